package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/loteria/loteria/services/internal/ledger"
	"github.com/loteria/loteria/services/internal/store/faultfs"
)

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		os.Exit(lockHelper())
	}
	if os.Getenv(killEnv) != "" {
		os.Exit(killHelper())
	}
	goleak.VerifyTestMain(m)
}

// The test's own bets: bet i of agency a has document a*10,000,000+i, so
// a stored row says which bet it is. A name with a quote makes rows'
// quoting matter. They are valid bets, as a ledger.Bet is: validation
// refuses a comma in a name, so none reaches a store
// (TestValidationLeavesOnlyQuotesToQuote).
func testBet(agency int, i int64) ledger.Bet {
	first := "José " + strconv.FormatInt(i, 10)
	last := "Núñez"
	switch i % 7 {
	case 3:
		last = "de la Lorca"
	case 5:
		last = `El "Chino"`
	}
	return ledger.Bet{
		FirstName: []byte(first), LastName: []byte(last),
		Document:  []byte(strconv.FormatInt(int64(agency)*10_000_000+i, 10)),
		Birthdate: []byte("1999-03-17"), Number: int(i % 10000),
	}
}

// betID is a stored bet's identity.
type betID struct {
	agency int
	index  int64
}

// storedBets reads a bets file with encoding/csv (not the store's reader)
// and checks every row is one of testBet's, returning them in order.
func storedBets(t testing.TB, data []byte) []betID {
	t.Helper()
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = 6
	var out []betID
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("bets file: %v", err)
		}
		a, err := strconv.Atoi(rec[0])
		if err != nil {
			t.Fatalf("bets file: agency %q", rec[0])
		}
		doc, _ := strconv.ParseInt(rec[3], 10, 64)
		id := betID{a, doc - int64(a)*10_000_000}
		want := testBet(id.agency, id.index)
		got := []string{rec[1], rec[2], rec[3], rec[4], rec[5]}
		exp := []string{string(want.FirstName), string(want.LastName), string(want.Document), string(want.Birthdate), strconv.Itoa(want.Number)}
		if fmt.Sprint(got) != fmt.Sprint(exp) {
			t.Fatalf("bets file row %v is not bet %d of agency %d", got, id.index, id.agency)
		}
		out = append(out, id)
	}
}

// submit sends bets [from, from+n) of agency (from as testBet indexes;
// at is what Begin gets: from, or ledger.AtMark).
func submit(l ledger.Ledger, agency int, at, from int64, n int) (*ledger.Receipt, error) {
	b, err := l.Begin(agency, at, n)
	if err != nil {
		return nil, err
	}
	for i := range n {
		b.Add(testBet(agency, from+int64(i)))
	}
	return b.Submit()
}

// must waits for a receipt and fails the test unless it succeeded.
func must(t *testing.T) func(*ledger.Receipt, error) *ledger.Receipt {
	return func(r *ledger.Receipt, err error) *ledger.Receipt {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Wait(); err != nil {
			t.Fatal(err)
		}
		return r
	}
}

func openT(t *testing.T, path string, opts Options) *Store {
	t.Helper()
	s, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func closeT(t *testing.T, s *Store) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// digest is a 32-byte digest for draws in tests.
func digest(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// sums checksums every file in dir but the lock file: what a refusal
// must leave as it was.
func sums(t *testing.T, dir string) map[string][32]byte {
	t.Helper()
	out := map[string][32]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(p, ".lock") {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		out[p] = sha256.Sum256(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameSums(t *testing.T, before, after map[string][32]byte) {
	t.Helper()
	if len(before) != len(after) {
		t.Fatalf("store files changed: %d files before, %d after (%v)", len(before), len(after), keys(after))
	}
	for p, h := range before {
		if after[p] != h {
			t.Fatalf("store file %s changed", p)
		}
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// memRead reads a file of a faultfs.
func memRead(t *testing.T, f *faultfs.FS, name string) []byte {
	t.Helper()
	b, err := f.ReadFile(name)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return b
}
