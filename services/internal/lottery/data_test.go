package lottery_test

import (
	"encoding/csv"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/loteria/loteria/internal/testenv"
	"github.com/loteria/loteria/services/internal/datagen"
	"github.com/loteria/loteria/services/internal/lottery"
)

// officialBets is how many bets the official files hold.
const officialBets = 78_697

// validateCSVFile reads a dataset file with encoding/csv (not the
// project's reader) and validates every record as the central would.
func validateCSVFile(t *testing.T, rules lottery.Rules, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = 5
	n := 0
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return n
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		n++
		if _, err := rules.ValidateFields([]byte(rec[0]), []byte(rec[1]), []byte(rec[2]), []byte(rec[3]), []byte(rec[4])); err != nil {
			line, _ := r.FieldPos(0)
			t.Errorf("%s:%d: %v", path, line, err)
		}
	}
}

// TestOfficialDataValid: every one of the official bets passes the rules.
func TestOfficialDataValid(t *testing.T) {
	dir := testenv.OfficialDataDir(t)
	rules := lottery.NewRules(time.Now())
	total := 0
	for i := 1; i <= 5; i++ {
		total += validateCSVFile(t, rules, testenv.AgencyFile(dir, i))
	}
	if total != officialBets {
		t.Errorf("validated %d bets, the official data has %d", total, officialBets)
	}
}

// TestGeneratedDataValid: the generator's files pass the rules, for
// several seeds and agencies, judged on the earliest day the generator's
// birthdates allow (its last birth year's end), so the test holds on any
// later day too.
func TestGeneratedDataValid(t *testing.T) {
	dir := t.TempDir()
	rules := lottery.NewRules(time.Date(2006, 1, 1, 0, 0, 0, 0, time.UTC))
	const perFile = 20_000
	for _, seed := range []uint64{0, 1, 42} {
		for agency := 1; agency <= 5; agency++ {
			path := filepath.Join(dir, "agency.csv")
			if _, err := datagen.WriteFile(path, datagen.Options{Seed: seed, Agency: agency}, perFile); err != nil {
				t.Fatal(err)
			}
			if n := validateCSVFile(t, rules, path); n != perFile {
				t.Fatalf("seed %d agency %d: %d records, want %d", seed, agency, n, perFile)
			}
		}
	}
}

// BenchmarkValidateNames validates the first and last names of 4,096
// generated bets (one op is one bet's two names): the mix of one and two
// given names, accents and lengths the generator writes, where
// BenchmarkValidateFields has one fixed pair.
func BenchmarkValidateNames(b *testing.B) {
	g := datagen.New(datagen.Options{Seed: 1, Agency: 1})
	var names [][2][]byte
	for range 4096 {
		bet := g.Next()
		names = append(names, [2][]byte{[]byte(bet.FirstName), []byte(bet.LastName)})
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		n := &names[i%len(names)]
		if lottery.ValidateName(lottery.FieldFirstName, n[0]) != nil || lottery.ValidateName(lottery.FieldLastName, n[1]) != nil {
			b.Fatalf("%d: a generated name refused", i)
		}
		i++
	}
}
