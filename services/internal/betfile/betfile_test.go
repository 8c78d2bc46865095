package betfile

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/loteria/loteria/internal/testenv"
	"github.com/loteria/loteria/services/internal/lottery"
)

var readerKinds = []struct {
	name string
	wrap func(io.Reader) io.Reader
}{
	{"whole", func(r io.Reader) io.Reader { return r }},
	{"one-byte", iotest.OneByteReader},
	{"half", iotest.HalfReader},
	{"data-err", iotest.DataErrReader},
}

func readAll(r *Reader) ([]lottery.Bet, error) {
	var bets []lottery.Bet
	for {
		b, err := r.Next()
		if err == io.EOF {
			return bets, nil
		}
		if err != nil {
			return bets, err
		}
		bets = append(bets, b)
	}
}

func TestReader(t *testing.T) {
	santiago := lottery.Bet{Agency: 2, FirstName: "Santiago Lionel", LastName: "Lorca", Document: "30904465", Birthdate: "1999-03-17", Number: 2201}
	joaquina := lottery.Bet{Agency: 2, FirstName: "Joaquina", LastName: "Abadía", Document: "29521189", Birthdate: "2000-02-29", Number: 7574}
	nandu := lottery.Bet{Agency: 2, FirstName: "Ñandú José", LastName: "Ibáñez Güemes", Document: "1", Birthdate: "1940-01-01", Number: 0}
	const (
		l1 = "Santiago Lionel,Lorca,30904465,1999-03-17,2201"
		l2 = "Joaquina,Abadía,29521189,2000-02-29,7574"
		l3 = "Ñandú José,Ibáñez Güemes,1,1940-01-01,0"
	)
	tests := []struct {
		name string
		in   string
		want []lottery.Bet
	}{
		{"empty file", "", nil},
		{"CRLF", l1 + "\r\n" + l2 + "\r\n" + l3 + "\r\n", []lottery.Bet{santiago, joaquina, nandu}},
		{"LF", l1 + "\n" + l2 + "\n" + l3 + "\n", []lottery.Bet{santiago, joaquina, nandu}},
		{"mixed", l1 + "\n" + l2 + "\r\n" + l3 + "\n", []lottery.Bet{santiago, joaquina, nandu}},
		{"no final newline", l1 + "\r\n" + l2, []lottery.Bet{santiago, joaquina}},
		{"no final newline after CR", l1 + "\r\n" + l2 + "\r", []lottery.Bet{santiago, joaquina}},
		{"blank lines", "\n\r\n" + l1 + "\r\n\r\n\n" + l2 + "\n\n", []lottery.Bet{santiago, joaquina}},
		{"only blank lines", "\n\r\n\n", nil},
		{"leading zeros in number", "A,B,1,2000-01-01,0042\n", []lottery.Bet{{Agency: 2, FirstName: "A", LastName: "B", Document: "1", Birthdate: "2000-01-01", Number: 42}}},
		{"byte-order mark", "\ufeff" + l1 + "\r\n" + l2 + "\r\n", []lottery.Bet{santiago, joaquina}},
		{"byte-order mark alone on the first line", "\ufeff\r\n" + l1 + "\n", []lottery.Bet{santiago}},
	}
	for _, tt := range tests {
		for _, rk := range readerKinds {
			t.Run(tt.name+"/"+rk.name, func(t *testing.T) {
				got, err := readAll(NewReader(rk.wrap(strings.NewReader(tt.in)), "agency-2.csv", 2))
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != len(tt.want) || (len(got) > 0 && !reflect.DeepEqual(got, tt.want)) {
					t.Fatalf("bets = %+v\nwant %+v", got, tt.want)
				}
			})
		}
	}
}

func TestReaderMalformed(t *testing.T) {
	const good = "Ana,Pérez,1,2000-01-01,1"
	tests := []struct {
		name    string
		in      string
		line    int // the line the error must name
		mention string
	}{
		{"four fields", good + "\nAna,Pérez,1,2000-01-01\n", 2, "fields"},
		{"six fields", "Ana,Pérez,1,2000-01-01,1,2\n", 1, "fields"},
		{"semicolons", "Ana;Pérez;1;2000-01-01;1\n", 1, "fields"},
		{"number too big", good + "\r\n" + good + "\r\nAna,Pérez,1,2000-01-01,10000\r\n", 3, "number"},
		{"negative number", "Ana,Pérez,1,2000-01-01,-1\n", 1, "number"},
		{"empty number", "Ana,Pérez,1,2000-01-01,\n", 1, "number"},
		{"bad date", "Ana,Pérez,1,2023-02-29,1\n", 1, "date"},
		{"date in another format", "Ana,Pérez,1,17/03/1999,1\n", 1, "date"},
		{"document with dots", "Ana,Pérez,30.904.465,2000-01-01,1\n", 1, "document"},
		{"empty first name", ",Pérez,1,2000-01-01,1\n", 1, "first name"},
		{"empty last name", "Ana,,1,2000-01-01,1\n", 1, "last name"},
		{"invalid UTF-8", "An\xe1,Pérez,1,2000-01-01,1\n", 1, "UTF-8"},
		{"CR inside a line", "An\ra,Pérez,1,2000-01-01,1\n", 1, "first name"},
		{"blank lines count", good + "\n\n\r\n" + "garbage\n", 4, "fields"},
		{"last line without newline", good + "\n" + "Ana,Pérez,1,2000-01-01,x", 2, "number"},
		{"space after comma", "Ana, Pérez,1,2000-01-01, 1\n", 1, "number"},
		// Only the file's first bytes may be a byte-order mark.
		{"byte-order mark on the second line", good + "\n\ufeff" + good + "\n", 2, "U+FEFF"},
		{"two byte-order marks", "\ufeff\ufeff" + good + "\n", 1, "U+FEFF"},
	}
	for _, tt := range tests {
		for _, rk := range readerKinds {
			t.Run(tt.name+"/"+rk.name, func(t *testing.T) {
				r := NewReader(rk.wrap(strings.NewReader(tt.in)), "data/agency-3.csv", 3)
				_, err := readAll(r)
				if err == nil {
					t.Fatalf("no error reading %q", tt.in)
				}
				prefix := fmt.Sprintf("data/agency-3.csv:%d: ", tt.line)
				if !strings.HasPrefix(err.Error(), prefix) {
					t.Fatalf("error %q does not start with %q", err, prefix)
				}
				if !strings.Contains(err.Error(), tt.mention) {
					t.Fatalf("error %q does not mention %q", err, tt.mention)
				}
				if r.Line() != tt.line {
					t.Fatalf("Line() = %d, want %d", r.Line(), tt.line)
				}
			})
		}
	}
}

func TestReaderLongLine(t *testing.T) {
	long := strings.Repeat("é", 40000) + ",Pérez,1,2000-01-01,1\n" // 80 KB
	in := "Ana,Pérez,1,2000-01-01,1\n" + long
	r := NewReader(strings.NewReader(in), "f.csv", 1)
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	_, err := r.Next()
	if err == nil || !strings.HasPrefix(err.Error(), "f.csv:2: ") {
		t.Fatalf("err = %v, want one naming f.csv:2", err)
	}
}

type failingReader struct{ err error }

func (f failingReader) Read([]byte) (int, error) { return 0, f.err }

// TestReaderErrorCutsNoLine: a read that fails in the middle of a line
// does not hand out the part before it ("…,12" of "…,1234") as a bet.
func TestReaderErrorCutsNoLine(t *testing.T) {
	boom := errors.New("disk on fire")
	in := io.MultiReader(strings.NewReader("Ana,Pérez,1,2000-01-01,1\nBea,Núñez,2,2000-01-02,12"), failingReader{boom})
	r := NewReader(in, "f.csv", 1)
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	if b, err := r.Next(); !errors.Is(err, boom) {
		t.Fatalf("after a failing read: %+v, %v; want the read's error", b, err)
	}
}

func TestReaderError(t *testing.T) {
	boom := errors.New("disk on fire")
	r := NewReader(io.MultiReader(strings.NewReader("Ana,Pérez,1,2000-01-01,1\n"), failingReader{boom}), "f.csv", 1)
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Next(); !errors.Is(err, boom) || !strings.Contains(err.Error(), "f.csv") {
		t.Fatalf("err = %v, want the reader's error naming the file", err)
	}
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "agency-1.csv")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestOpen(t *testing.T) {
	p := writeFile(t, "Ana,Pérez,1,2000-01-01,1\r\nBea,Núñez,2,2000-01-02,7574\r\n")
	f, err := Open(p, 4)
	if err != nil {
		t.Fatal(err)
	}
	bets, err := readAll(f.Reader)
	if err != nil {
		t.Fatal(err)
	}
	want := []lottery.Bet{
		{Agency: 4, FirstName: "Ana", LastName: "Pérez", Document: "1", Birthdate: "2000-01-01", Number: 1},
		{Agency: 4, FirstName: "Bea", LastName: "Núñez", Document: "2", Birthdate: "2000-01-02", Number: 7574},
	}
	if !reflect.DeepEqual(bets, want) {
		t.Fatalf("bets = %+v, want %+v", bets, want)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(filepath.Join(t.TempDir(), "missing.csv"), 1); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Open of a missing file: %v", err)
	}

	// Errors name the path.
	p = writeFile(t, "Ana,Pérez,1,2000-01-01,1\nbad\n")
	f, err = Open(p, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := readAll(f.Reader); err == nil || !strings.HasPrefix(err.Error(), p+":2: ") {
		t.Fatalf("err = %v, want one naming %s:2", err, p)
	}
}

func TestCountLines(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want int
	}{
		{"empty", "", 0},
		{"one line", "a\n", 1},
		{"one line, no newline", "a", 1},
		{"CRLF", "a\r\nb\r\nc\r\n", 3},
		{"blank lines", "\n\r\na\n\n\r\nb\n\n", 2},
		{"only blanks", "\n\n\r\n\r\n", 0},
		{"lines are not parsed", "not,a,bet\n;;;\n", 2},
		{"long line counts once", strings.Repeat("ñ", 100<<10) + "\nb\n" + strings.Repeat("x", 70<<10), 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := CountLines(writeFile(t, tt.in))
			if err != nil || n != tt.want {
				t.Fatalf("CountLines = %d, %v; want %d", n, err, tt.want)
			}
		})
	}
	if _, err := CountLines(filepath.Join(t.TempDir(), "missing.csv")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("CountLines of a missing file: %v", err)
	}
}

func TestAppendLine(t *testing.T) {
	tests := []struct {
		bet  lottery.Bet
		want string
	}{
		{lottery.Bet{Agency: 1, FirstName: "Santiago Lionel", LastName: "Lorca", Document: "30904465", Birthdate: "1999-03-17", Number: 2201},
			"Santiago Lionel,Lorca,30904465,1999-03-17,2201\r\n"},
		{lottery.Bet{Agency: 1, FirstName: "Ñandú", LastName: "Pérez", Document: "123", Birthdate: "2000-02-29", Number: 7574},
			"Ñandú,Pérez,123,2000-02-29,7574\r\n"},
		{lottery.Bet{Agency: 1, FirstName: "A", LastName: "B", Document: "1", Birthdate: "1900-01-01", Number: 0},
			"A,B,1,1900-01-01,0\r\n"},
	}
	var file []byte
	var bets []lottery.Bet
	for _, tt := range tests {
		got := AppendLine([]byte("x"), tt.bet)
		if string(got) != "x"+tt.want {
			t.Errorf("AppendLine = %q, want %q", got[1:], tt.want)
		}
		file = AppendLine(file, tt.bet)
		bets = append(bets, tt.bet)
	}
	back, err := readAll(NewReader(strings.NewReader(string(file)), "rt", 1))
	if err != nil || !reflect.DeepEqual(back, bets) {
		t.Fatalf("round trip = %+v, %v; want %+v", back, err, bets)
	}
}

// TestOfficialData reads the official files and compares with encoding/csv.
func TestOfficialData(t *testing.T) {
	dir := testenv.OfficialDataDir(t)
	total := 0
	for i := 1; i <= 5; i++ {
		path := testenv.AgencyFile(dir, i)
		want := testenv.ReadAgencyFile(t, path, i)
		f, err := Open(path, i)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for ; ; n++ {
			b, err := f.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			w := want[n]
			if b.Agency != i || b.FirstName != w.First || b.LastName != w.Last || b.Document != w.Document ||
				b.Birthdate != w.Birthdate || strconv.Itoa(b.Number) != w.Number {
				t.Fatalf("%s bet %d = %+v, encoding/csv says %+v", path, n+1, b, w)
			}
		}
		f.Close()
		if n != len(want) {
			t.Fatalf("%s: %d bets, encoding/csv reads %d", path, n, len(want))
		}
		c, err := CountLines(path)
		if err != nil || c != n {
			t.Fatalf("CountLines(%s) = %d, %v; want %d", path, c, err, n)
		}
		total += n
	}
	if total != 78697 {
		t.Fatalf("%d bets in the official data, the dataset README says 78,697", total)
	}
}

// FuzzBetfileLine: any line either parses to a valid bet that AppendLine
// writes back to a line parsing the same, or fails naming file:line.
func FuzzBetfileLine(f *testing.F) {
	f.Add("Santiago Lionel,Lorca,30904465,1999-03-17,2201\r\n")
	f.Add("Ñandú,Pérez,1,2000-02-29,7574")
	f.Add("\r\n\r\n")
	f.Add("a,b,c,d,e,f\n")
	f.Add("A,B,1,2023-02-29,1\n")
	f.Add("A,B,0001,2024-02-29,0000\n")
	f.Fuzz(func(t *testing.T, in string) {
		r := NewReader(strings.NewReader(in), "fz.csv", 7)
		for {
			b, err := r.Next()
			if err == io.EOF {
				return
			}
			if err != nil {
				if !strings.HasPrefix(err.Error(), fmt.Sprintf("fz.csv:%d: ", r.Line())) {
					t.Fatalf("error %q does not name fz.csv:%d", err, r.Line())
				}
				return
			}
			if err := b.Validate(); err != nil || b.Agency != 7 {
				t.Fatalf("accepted an invalid bet %+v: %v", b, err)
			}
			line := AppendLine(nil, b)
			b2, err := NewReader(strings.NewReader(string(line)), "rt", 7).Next()
			if err != nil || b2 != b {
				t.Fatalf("%+v written as %q reads back as %+v, %v", b, line, b2, err)
			}
		}
	})
}

// BenchmarkReader reads a file of generated lines in the official data's
// shape, what an agency does per bet before packing it.
func BenchmarkReader(b *testing.B) {
	var file []byte
	for i := range 20000 {
		file = AppendLine(file, lottery.Bet{FirstName: "Santiago Lionel", LastName: "Lorca Abadía",
			Document: strconv.Itoa(30000000 + i*7919%9000000), Birthdate: "1999-03-17", Number: i * 31 % 10000})
	}
	b.SetBytes(int64(len(file)))
	b.ReportAllocs()
	for b.Loop() {
		r := NewReader(strings.NewReader(string(file)), "bench.csv", 1)
		for {
			if _, err := r.Next(); err != nil {
				if err != io.EOF {
					b.Fatal(err)
				}
				break
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(20000*b.N), "ns/bet")
}

// TestReaderAcrossBlocks reads a generated file of many blocks, with lines
// of every length around the block's edge, and compares each bet with
// what encoding/csv reads from the same bytes.
func TestReaderAcrossBlocks(t *testing.T) {
	var file []byte
	for i := range 6000 {
		name := strings.Repeat("ñ", i%50+1) // lines of 40 to 140 bytes
		sep := "\r\n"
		if i%3 == 0 {
			sep = "\n"
		}
		file = fmt.Appendf(file, "%s,Pérez %d,%d,1999-03-17,%d%s", name, i, 1000+i, i%10000, sep)
		if i%500 == 0 {
			file = append(file, "\r\n\n"...) // blank lines are skipped
		}
	}
	if len(file) < 5*MaxLine {
		t.Fatalf("the file is %d bytes: too small to cross blocks", len(file))
	}
	cr := csv.NewReader(strings.NewReader(string(file)))
	cr.FieldsPerRecord = 5
	want, err := cr.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	for _, rk := range readerKinds {
		t.Run(rk.name, func(t *testing.T) {
			got, err := readAll(NewReader(rk.wrap(strings.NewReader(string(file))), "big.csv", 4))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) {
				t.Fatalf("%d bets, encoding/csv reads %d", len(got), len(want))
			}
			for i, b := range got {
				w := want[i]
				if b.Agency != 4 || b.FirstName != w[0] || b.LastName != w[1] || b.Document != w[2] || b.Birthdate != w[3] || strconv.Itoa(b.Number) != w[4] {
					t.Fatalf("bet %d = %+v, encoding/csv says %q", i+1, b, w)
				}
			}
		})
	}
}

// TestReaderLineAtTheLimit: a line of MaxLine bytes with its newline is
// read (and judged: its name is too long); one byte more is refused as too
// long, naming its line, on every later call.
func TestReaderLineAtTheLimit(t *testing.T) {
	line := func(n int) string { // a line of n bytes with its LF
		tail := ",Pérez,1,2000-01-01,1\n"
		return strings.Repeat("a", n-len(tail)) + tail
	}
	ok := "Ana,Pérez,1,2000-01-01,1\n"
	tests := []struct {
		n    int
		want string
	}{
		{MaxLine, "f.csv:2: first name is"},
		{MaxLine + 1, "f.csv:2: line longer than"},
	}
	for _, tt := range tests {
		r := NewReader(strings.NewReader(ok+line(tt.n)+ok), "f.csv", 1)
		if _, err := r.Next(); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if _, err := r.Next(); err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("a line of %d bytes: err = %v, want %q...", tt.n, err, tt.want)
			}
			if r.Line() != 2 {
				t.Fatalf("a line of %d bytes: Line() = %d, want 2", tt.n, r.Line())
			}
			if tt.n == MaxLine {
				break // a bad bet is not sticky: the caller stops or goes on
			}
		}
	}
}

type emptyReader struct{}

func (emptyReader) Read([]byte) (int, error) { return 0, nil }

// oneShot returns its data and its error in one Read.
type oneShot struct {
	data string
	err  error
	done bool
}

func (o *oneShot) Read(p []byte) (int, error) {
	if o.done {
		return 0, o.err
	}
	o.done = true
	return copy(p, o.data), o.err
}

// TestReaderReadsThatGoNowhere: a reader returning nothing and no error is
// given up on, as bufio does; data returned with an error is read up to
// the line the error cuts, which is not.
func TestReaderReadsThatGoNowhere(t *testing.T) {
	if _, err := NewReader(emptyReader{}, "f.csv", 1).Next(); !errors.Is(err, io.ErrNoProgress) {
		t.Fatalf("a reader that returns nothing: %v, want io.ErrNoProgress", err)
	}
	boom := errors.New("disk on fire")
	r := NewReader(&oneShot{data: "A,B,1,2000-01-01,1\nC,D,2,2000-01-01,12", err: boom}, "f.csv", 1)
	if b, err := r.Next(); err != nil || b.Number != 1 {
		t.Fatalf("the whole line before the error: %+v, %v", b, err)
	}
	for range 2 {
		if b, err := r.Next(); !errors.Is(err, boom) {
			t.Fatalf("the cut line: %+v, %v; want the read's error, every call", b, err)
		}
	}
	if r.Line() != 1 {
		t.Fatalf("Line() = %d, want 1", r.Line())
	}
}

// TestReaderCRLFOnTheBlockEdge puts a line's CR as the block's last byte
// and its LF as the next block's first, and every shift around it.
func TestReaderCRLFOnTheBlockEdge(t *testing.T) {
	const line = "Ana,Pérez,1,2000-01-01,1\r\n"
	for shift := -3; shift <= 3; shift++ {
		// line, blank lines (skipped), then line again with its CR at
		// byte MaxLine-1+shift: the plain reader's first block ends there
		cr := MaxLine - 1 + shift
		in := line + strings.Repeat("\n", cr-2*len(line)+2) + line + line
		if in[cr] != '\r' || in[cr+1] != '\n' {
			t.Fatalf("shift %d: byte %d is %q, not the CR of a CRLF", shift, cr, in[cr])
		}
		for _, rk := range readerKinds {
			got, err := readAll(NewReader(rk.wrap(strings.NewReader(in)), "f.csv", 1))
			if err != nil || len(got) != 3 {
				t.Fatalf("shift %d, %s: %d bets, %v; want 3", shift, rk.name, len(got), err)
			}
		}
	}
}

// TestReaderRefreshesTheDay: a bet born on the new UTC day, read after
// midnight by a reader whose clock was read before it, is accepted.
func TestReaderRefreshesTheDay(t *testing.T) {
	clock := time.Date(2025, 6, 1, 23, 59, 59, 0, time.UTC)
	in := "Ana,Pérez,1,2000-01-01,1\nBea,Núñez,2,2025-06-02,2\nCea,Núñez,3,2025-06-03,3\n"
	r := NewReader(strings.NewReader(in), "f.csv", 1)
	r.now = func() time.Time { return clock }
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	clock = clock.Add(2 * time.Second) // 2025-06-02 00:00:01
	if b, err := r.Next(); err != nil || b.Number != 2 {
		t.Fatalf("born on the new day: %+v, %v; want it accepted", b, err)
	}
	if _, err := r.Next(); err == nil || !strings.Contains(err.Error(), "f.csv:3: ") {
		t.Fatalf("born tomorrow: %v; want it refused naming line 3", err)
	}
}

// TestCountLinesAgreesWithTheReader over a generated file of many blocks:
// the agency bounds its stream by the count.
func TestCountLinesAgreesWithTheReader(t *testing.T) {
	var body []byte
	for i := range 3000 {
		body = fmt.Appendf(body, "%s,Pérez,%d,1999-03-17,%d\r\n", strings.Repeat("ñ", i%50+1), 1000+i, i%10000)
		if i%400 == 0 {
			body = append(body, "\n\r\n"...)
		}
	}
	for _, tc := range []struct{ name, head string }{
		{"plain", ""},
		{"byte-order mark", byteOrderMark},
		// The mark on a line of its own: a blank line to both.
		{"byte-order mark alone on the first line", byteOrderMark + "\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := writeFile(t, tc.head+string(body))
			n, err := CountLines(p)
			if err != nil {
				t.Fatal(err)
			}
			f, err := Open(p, 1)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			bets, err := readAll(f.Reader)
			if err != nil || len(bets) != n || n != 3000 {
				t.Fatalf("CountLines %d, the reader %d bets (%v); want 3000 both", n, len(bets), err)
			}
		})
	}
}
