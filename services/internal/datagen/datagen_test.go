package datagen

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/loteria/loteria/services/internal/lottery"
)

func firstBets(opts Options, n int) []lottery.Bet {
	g := New(opts)
	bets := make([]lottery.Bet, n)
	for i := range bets {
		bets[i] = g.Next()
	}
	return bets
}

func TestDeterminism(t *testing.T) {
	base := Options{Seed: 1, Agency: 1}
	tests := []struct {
		name  string
		a, b  Options
		equal bool
	}{
		{"same options", base, base, true},
		{"same options, big seed", Options{Seed: math.MaxUint64, Agency: 3}, Options{Seed: math.MaxUint64, Agency: 3}, true},
		{"default ratio is 0.002", base, Options{Seed: 1, Agency: 1, WinnerRatio: DefaultWinnerRatio}, true},
		{"different seed", base, Options{Seed: 2, Agency: 1}, false},
		{"different agency", base, Options{Seed: 1, Agency: 2}, false},
		{"seed and agency swapped", Options{Seed: 1, Agency: 2}, Options{Seed: 2, Agency: 1}, false},
		{"seed 0 vs agency 0", Options{Seed: 0, Agency: 0}, Options{Seed: 0, Agency: 1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := firstBets(tt.a, 1000), firstBets(tt.b, 1000)
			same := 0
			for i := range a {
				// Compare everything but the agency, which differs on purpose.
				x, y := a[i], b[i]
				x.Agency, y.Agency = 0, 0
				if x == y {
					same++
				}
			}
			if tt.equal && same != len(a) {
				t.Fatalf("only %d of %d bets equal", same, len(a))
			}
			if !tt.equal && same > 1 {
				t.Fatalf("%d of %d bets equal; want different sequences", same, len(a))
			}
		})
	}
}

// TestGolden pins the output so that a change in the generator (or in what
// it relies on) that alters the data cannot go unnoticed: the files must be
// the same on every machine and Go version. Update the constants only on
// purpose.
func TestGolden(t *testing.T) {
	var buf []byte
	g := New(Options{Seed: 1, Agency: 1})
	var first []byte
	for i := range 1000 {
		buf = AppendCSV(buf, g.Next())
		if i == 2 {
			first = bytes.Clone(buf)
		}
	}
	sum := sha256.Sum256(buf)
	if got := string(first); got != goldenFirst3 {
		t.Errorf("first 3 lines:\n%s\nwant:\n%s", got, goldenFirst3)
	}
	if got := hex.EncodeToString(sum[:]); got != goldenSHA256 {
		t.Errorf("sha256 of first 1000 lines = %s, want %s", got, goldenSHA256)
	}
}

const (
	goldenFirst3 = "Renata Martina,Moreno,17280966,1963-09-17,519\r\n" +
		"Florencia,Rojas,4919701,1940-09-19,4901\r\n" +
		"Carolina Milagros,Ibáñez,30523015,1984-09-26,257\r\n"
	goldenSHA256 = "e868808ea1f315389cee8a3f6d4824f38cbb63045c32c74565d140415be16a71"
)

// TestTables checks that the tables fit the generator's compact indices and
// hold what the package documentation promises.
func TestTables(t *testing.T) {
	tb := loadTables()
	days := len(tb.dates) / dateLen
	if days >= 1<<16 || len(surnames) >= 1<<16 || len(tb.given) >= 1<<32 {
		t.Fatalf("tables too big for slot: %d days, %d surnames, %d given names", days, len(surnames), len(tb.given))
	}
	if first, last := tb.dates[:dateLen], tb.dates[len(tb.dates)-dateLen:]; first != "1940-01-01" || last != "2005-12-31" {
		t.Fatalf("dates run %s..%s", first, last)
	}
	if len(tb.docBase) != days {
		t.Fatalf("%d docBase entries for %d days", len(tb.docBase), days)
	}
	for d := 1; d < days; d++ {
		if tb.docBase[d] < tb.docBase[d-1] {
			t.Fatalf("docBase decreases at day %d", d)
		}
	}
	if lo, hi := int(tb.docBase[0])-docJitter, int(tb.docBase[days-1])+docJitter; lo < 1_000_000 || hi >= 100_000_000 {
		t.Fatalf("documents span %d..%d, want 7-8 digits", lo, hi)
	}
	for _, list := range [][]string{maleNames, femaleNames, surnames} {
		seen := map[string]bool{}
		for _, name := range list {
			if err := lottery.ValidateName(lottery.FieldLastName, name); err != nil || strings.Contains(name, " ") || seen[name] {
				t.Errorf("bad or repeated name %q (%v)", name, err)
			}
			seen[name] = true
		}
	}
	// Every given name the generator can write (one or two names) passes
	// the lottery's rules, the longest included.
	for _, name := range tb.given {
		if err := lottery.ValidateName(lottery.FieldFirstName, name); err != nil {
			t.Errorf("given name %q: %v", name, err)
		}
	}
	for g, gn := range tb.gender {
		list := [2][]string{maleNames, femaleNames}[g]
		if got := tb.given[gn.base+2*gn.n+2]; got != list[2] {
			t.Errorf("gender %d single name 2 = %q, want %q", g, got, list[2])
		}
		if got, want := tb.given[gn.base+1*gn.n+3], list[1]+" "+list[3]; got != want {
			t.Errorf("gender %d names (1,3) = %q, want %q", g, got, want)
		}
	}
}

func TestAppendDoc(t *testing.T) {
	for _, v := range []uint32{0, 7, 10, 99, 100, 1_000_000, 4_919_701, 30_904_465, 99_999_999} {
		if got, want := string(appendDoc([]byte("x"), v)), "x"+strconv.Itoa(int(v)); got != want {
			t.Errorf("appendDoc(%d) = %q, want %q", v, got, want)
		}
	}
}

func TestBetsValid(t *testing.T) {
	for _, opts := range []Options{
		{Seed: 1, Agency: 1},
		{Seed: 42, Agency: 5, WinnerRatio: 0.5},
		{Seed: math.MaxUint64, Agency: 1 << 20, WinnerRatio: -1},
	} {
		g := New(opts)
		// Judged on the first day every generated birthdate is in the past,
		// so the test holds on any later day.
		rules := lottery.NewRules(time.Date(lastBirthYear+1, time.January, 1, 0, 0, 0, 0, time.UTC))
		for i := range 20_000 {
			b := g.Next()
			if err := rules.Validate(b); err != nil {
				t.Fatalf("%+v bet %d %+v: %v", opts, i, b, err)
			}
			if b.Agency != opts.Agency {
				t.Fatalf("%+v bet %d: agency %d", opts, i, b.Agency)
			}
			if n := len(b.Document); n < 7 || n > 8 || b.Document[0] == '0' {
				t.Fatalf("%+v bet %d: document %q, want 7-8 digits", opts, i, b.Document)
			}
			y, _ := strconv.Atoi(b.Birthdate[:4])
			if y < firstBirthYear || y > lastBirthYear {
				t.Fatalf("%+v bet %d: birthdate %q out of %d..%d", opts, i, b.Birthdate, firstBirthYear, lastBirthYear)
			}
			if names := strings.Split(b.FirstName, " "); len(names) > 2 || names[0] == "" ||
				len(names) == 2 && (names[1] == "" || names[0] == names[1]) {
				t.Fatalf("%+v bet %d: first name %q, want one name or two different ones", opts, i, b.FirstName)
			}
		}
	}
}

func TestCSVLines(t *testing.T) {
	g := New(Options{Seed: 7, Agency: 2})
	var line []byte
	for i := range 10_000 {
		b := g.Next()
		line = AppendCSV(line[:0], b)
		if !bytes.HasSuffix(line, []byte("\r\n")) {
			t.Fatalf("line %d %q does not end in CRLF", i, line)
		}
		body := line[:len(line)-2]
		if bytes.ContainsAny(body, "\r\n;") {
			t.Fatalf("line %d %q has a stray separator", i, line)
		}
		if !utf8.Valid(line) {
			t.Fatalf("line %d %q is not UTF-8", i, line)
		}
		fields := strings.Split(string(body), ",")
		if len(fields) != 5 {
			t.Fatalf("line %d %q has %d fields, want 5", i, line, len(fields))
		}
		want := []string{b.FirstName, b.LastName, b.Document, b.Birthdate, strconv.Itoa(b.Number)}
		for k := range want {
			if fields[k] != want[k] {
				t.Fatalf("line %d field %d = %q, want %q", i, k, fields[k], want[k])
			}
		}
		if n, err := lottery.ParseNumber(fields[4]); err != nil || n != b.Number {
			t.Fatalf("line %d number %q: %v", i, fields[4], err)
		}
	}
}

func TestAppendCSV(t *testing.T) {
	tests := []struct {
		bet  lottery.Bet
		want string
	}{
		{lottery.Bet{FirstName: "Ana Inés", LastName: "Muñoz", Document: "30904465", Birthdate: "1999-03-17", Number: 7574},
			"Ana Inés,Muñoz,30904465,1999-03-17,7574\r\n"},
		{lottery.Bet{FirstName: "José", LastName: "Paz", Document: "5000000", Birthdate: "1940-01-01", Number: 0},
			"José,Paz,5000000,1940-01-01,0\r\n"},
	}
	for _, tt := range tests {
		if got := string(AppendCSV([]byte("x"), tt.bet)); got != "x"+tt.want {
			t.Errorf("AppendCSV = %q, want %q", got, "x"+tt.want)
		}
	}
}

// TestRealism checks the shape of the data: accents, two given names,
// variety, and a DNI that grows with the birth year.
func TestRealism(t *testing.T) {
	const n = 10_000
	g := New(Options{Seed: 3, Agency: 4})
	accented, twoNames := 0, 0
	surnameSeen := map[string]int{}
	var docOld, docYoung, nOld, nYoung float64
	for range n {
		b := g.Next()
		if hasNonASCII(b.FirstName) || hasNonASCII(b.LastName) {
			accented++
		}
		if strings.Contains(b.FirstName, " ") {
			twoNames++
		}
		surnameSeen[b.LastName]++
		doc, _ := strconv.Atoi(b.Document)
		switch y, _ := strconv.Atoi(b.Birthdate[:4]); {
		case y < 1960:
			docOld += float64(doc)
			nOld++
		case y >= 1990:
			docYoung += float64(doc)
			nYoung++
		}
	}
	if share := float64(accented) / n; share < 0.2 || share > 0.9 {
		t.Errorf("%.1f%% of bets carry an accent, want 20%%..90%%", 100*share)
	}
	if share := float64(twoNames) / n; share < 0.5 || share > 0.75 {
		t.Errorf("%.1f%% of bets have two given names, want 50%%..75%%", 100*share)
	}
	if len(surnameSeen) < len(surnames)*9/10 {
		t.Errorf("only %d of %d surnames seen", len(surnameSeen), len(surnames))
	}
	if top := surnameSeen[surnames[0]]; top < n/100 || top > n/10 {
		t.Errorf("most common surname seen %d times in %d bets, want 1%%..10%%", top, n)
	}
	if docOld/nOld >= docYoung/nYoung {
		t.Errorf("mean DNI of people born before 1960 (%.0f) >= of those born since 1990 (%.0f)", docOld/nOld, docYoung/nYoung)
	}
}

func hasNonASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return true
		}
	}
	return false
}

func TestWinnerRatio(t *testing.T) {
	const n = 200_000
	tests := []struct {
		ratio float64
		want  float64 // expected share of winners
	}{
		{0, 0.002 + 0.998/10000},
		{0.01, 0.01 + 0.99/10000},
		{-1, 1.0 / 10000},
		{1, 1},
		{5, 1},
	}
	for _, tt := range tests {
		opts := Options{Seed: 11, Agency: 1, WinnerRatio: tt.ratio}
		if got := ExpectedWinnerShare(opts); math.Abs(got-tt.want) > 1e-12 {
			t.Errorf("ExpectedWinnerShare(%v) = %v, want %v", tt.ratio, got, tt.want)
		}
		g := New(opts)
		winners := 0
		for range n {
			if g.Next().Wins() {
				winners++
			}
		}
		exp := tt.want * n
		// Loose: ±(25% + 5 standard deviations).
		tol := 0.25*exp + 5*math.Sqrt(exp)
		if math.Abs(float64(winners)-exp) > tol {
			t.Errorf("ratio %v: %d winners in %d bets, want %.0f ± %.0f", tt.ratio, winners, n, exp, tol)
		}
	}
}

func TestWrite(t *testing.T) {
	opts := Options{Seed: 5, Agency: 3, WinnerRatio: 0.05}
	const n = 3000 // crosses several batches and the 64 KiB buffer
	var buf bytes.Buffer
	winners, err := Write(&buf, opts, n)
	if err != nil {
		t.Fatal(err)
	}
	g := New(opts)
	var want []byte
	wantWinners := 0
	for range n {
		b := g.Next()
		want = AppendCSV(want, b)
		if b.Wins() {
			wantWinners++
		}
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Fatal("Write output differs from AppendCSV of Next")
	}
	if winners != wantWinners || winners == 0 {
		t.Fatalf("winners = %d, want %d (> 0)", winners, wantWinners)
	}

	path := filepath.Join(t.TempDir(), "agency-3.csv")
	fw, err := WriteFile(path, opts, n)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) || fw != wantWinners {
		t.Fatalf("WriteFile: %d bytes, %d winners; want %d bytes, %d winners", len(got), fw, len(want), wantWinners)
	}
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 1 {
		t.Fatalf("directory holds %d entries, want only the file", len(ents))
	}

	if _, err := Write(&buf, opts, -1); err == nil {
		t.Error("Write with n = -1: no error")
	}
	if _, err := WriteFile(filepath.Join(t.TempDir(), "missing", "a.csv"), opts, 1); err == nil {
		t.Error("WriteFile into a missing directory: no error")
	}
	var empty bytes.Buffer
	if w, err := Write(&empty, opts, 0); err != nil || w != 0 || empty.Len() != 0 {
		t.Errorf("Write n = 0: %d winners, %d bytes, %v", w, empty.Len(), err)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, os.ErrClosed }

func TestWriteError(t *testing.T) {
	if _, err := Write(failWriter{}, Options{Seed: 1}, 100_000); err == nil {
		t.Fatal("no error from a failing writer")
	}
}

func BenchmarkNext(b *testing.B) {
	g := New(Options{Seed: 1, Agency: 1})
	b.ReportAllocs()
	var sink int
	for b.Loop() {
		sink += g.Next().Number
	}
	_ = sink
}

func BenchmarkAppendCSV(b *testing.B) {
	g := New(Options{Seed: 1, Agency: 1})
	bets := make([]lottery.Bet, 1024)
	for i := range bets {
		bets[i] = g.Next()
	}
	buf := make([]byte, 0, 128)
	total := 0
	for _, bet := range bets {
		total += len(AppendCSV(buf[:0], bet))
	}
	b.SetBytes(int64(total / len(bets)))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		buf = AppendCSV(buf[:0], bets[i&1023])
		i++
	}
}

func BenchmarkWrite(b *testing.B) {
	b.ReportAllocs()
	const n = 10_000
	for b.Loop() {
		if _, err := Write(discard{}, Options{Seed: 1, Agency: 1}, n); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/bet")
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
