package store

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/loteria/loteria/services/internal/datagen"
	"github.com/loteria/loteria/services/internal/ledger"
	"github.com/loteria/loteria/services/internal/lottery"
)

func TestAppendRow(t *testing.T) {
	tests := []struct {
		name                   string
		agency                 int
		first, last, doc, date string
		number                 int
		want                   string
	}{
		{"plain", 1, "Santiago Lionel", "Lorca", "30904465", "1999-03-17", 2201, "1,Santiago Lionel,Lorca,30904465,1999-03-17,2201\n"},
		{"utf-8 is not quoted", 5, "Ñandú José", "Abadía", "1", "2000-02-29", 7574, "5,Ñandú José,Abadía,1,2000-02-29,7574\n"},
		{"number 0", 12, "A", "B", "0", "0001-01-01", 0, "12,A,B,0,0001-01-01,0\n"},
		{"spaces are not quoted", 1, " Ana ", "de la Cruz", "1", "2000-01-01", 9999, "1, Ana ,de la Cruz,1,2000-01-01,9999\n"},
		{"comma", 1, "Lorca, hijo", "B", "1", "2000-01-01", 1, "1,\"Lorca, hijo\",B,1,2000-01-01,1\n"},
		{"quote", 1, `El "Chino"`, "B", "1", "2000-01-01", 1, "1,\"El \"\"Chino\"\"\",B,1,2000-01-01,1\n"},
		{"only a quote", 1, `"`, "B", "1", "2000-01-01", 1, "1,\"\"\"\",B,1,2000-01-01,1\n"},
		{"newline", 1, "A", "two\nlines", "1", "2000-01-01", 1, "1,A,\"two\nlines\",1,2000-01-01,1\n"},
		{"carriage return", 1, "A", "cr\r", "1", "2000-01-01", 1, "1,A,\"cr\r\",1,2000-01-01,1\n"},
		{"empty field", 1, "", "B", "1", "2000-01-01", 1, "1,,B,1,2000-01-01,1\n"},
		{"every field quoted", 1, "a,", "b\"", "c\n", "d\r", 1, "1,\"a,\",\"b\"\"\",\"c\n\",\"d\r\",1\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gotS := AppendRow([]byte("x"), tt.agency, tt.first, tt.last, tt.doc, tt.date, tt.number)
			gotB := AppendRow([]byte("x"), tt.agency, []byte(tt.first), []byte(tt.last), []byte(tt.doc), []byte(tt.date), tt.number)
			if string(gotS) != "x"+tt.want || string(gotB) != "x"+tt.want {
				t.Fatalf("AppendRow = %q (string), %q ([]byte); want %q", gotS[1:], gotB[1:], tt.want)
			}
		})
	}
}

// TestAppendRowReadsBackWithEncodingCSV writes rows with awkward fields and
// reads them back with encoding/csv (an RFC 4180 reader).
func TestAppendRowReadsBackWithEncodingCSV(t *testing.T) {
	fields := []string{"Ana", "Ñandú", "Abadía Güemes", "", " ", "a,b", `"`, `""`, `say "hi", bye`, "x\ny", "cr\rin", ",", `a"b,c"d`}
	type row struct {
		agency                 int
		first, last, doc, date string
		number                 int
	}
	var rows []row
	var file []byte
	for i, f := range fields {
		for j, g := range fields {
			r := row{i + 1, f, g, strconv.Itoa(i*100 + j), "1999-03-17", (i*31 + j) % 10000}
			rows = append(rows, r)
			file = AppendRow(file, r.agency, r.first, r.last, r.doc, r.date, r.number)
		}
	}
	cr := csv.NewReader(bytes.NewReader(file))
	cr.FieldsPerRecord = 6
	for i, r := range rows {
		rec, err := cr.Read()
		if err != nil {
			t.Fatalf("row %d: %v", i, err)
		}
		want := []string{strconv.Itoa(r.agency), r.first, r.last, r.doc, r.date, strconv.Itoa(r.number)}
		if fmt.Sprintf("%q", rec) != fmt.Sprintf("%q", want) {
			t.Fatalf("row %d read back as %q, want %q", i, rec, want)
		}
	}
	if _, err := cr.Read(); err != io.EOF {
		t.Fatalf("after the last row: %v", err)
	}
}

func TestAppendRowAllocatesNothing(t *testing.T) {
	buf := make([]byte, 0, 256)
	first, last := []byte("María José"), []byte("D'Alessandro, \"hijo\"")
	doc, date := []byte("30904465"), []byte("1999-03-17")
	allocs := testing.AllocsPerRun(100, func() {
		buf = AppendRow(buf[:0], 3, first, last, doc, date, 7574)
	})
	if allocs != 0 {
		t.Fatalf("AppendRow into a buffer with room: %v allocs, want 0", allocs)
	}
}

type scanned struct {
	agency int
	doc    string
	number int
}

func scanAll(r io.Reader) ([]scanned, error) {
	var out []scanned
	err := ScanRows(r, func(a int, doc []byte, n int) error {
		out = append(out, scanned{a, string(doc), n})
		return nil
	})
	return out, err
}

func TestScanRows(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []scanned
		wantErr bool
	}{
		{"empty", "", nil, false},
		{"rows", "1,Santiago Lionel,Lorca,30904465,1999-03-17,2201\n5,Ñandú,Abadía,1,2000-02-29,7574\n",
			[]scanned{{1, "30904465", 2201}, {5, "1", 7574}}, false},
		{"last row without newline", "1,A,B,7,2000-01-01,0", []scanned{{1, "7", 0}}, false},
		{"CRLF rows (a file the seed wrote on Windows)", "2,A,B,7,2000-01-01,12\r\n3,C,D,8,2000-01-01,13\r\n",
			[]scanned{{2, "7", 12}, {3, "8", 13}}, false},
		{"quoted comma in a name", "4,\"Lorca, hijo\",\"El \"\"Chino\"\"\",99,2000-01-01,7574\n", []scanned{{4, "99", 7574}}, false},
		{"quoted comma in both names", "4,\"a,b\",\"c,d\",99,2000-01-01,1\n", []scanned{{4, "99", 1}}, false},
		{"too few fields", "1,A,B,7,2000-01-01\n", nil, true},
		{"no commas", "garbage\n", nil, true},
		{"agency not a number", "x,A,B,7,2000-01-01,1\n", nil, true},
		{"number not a number", "1,A,B,7,2000-01-01,x\n", nil, true},
		{"blank line", "1,A,B,7,2000-01-01,1\n\n1,A,B,7,2000-01-01,1\n", []scanned{{1, "7", 1}}, true},
		{"torn last row", "1,A,B,7,2000-01-01,1\n1,A,B", []scanned{{1, "7", 1}}, true},
	}
	for _, tt := range tests {
		for _, rk := range []struct {
			name string
			wrap func(io.Reader) io.Reader
		}{{"whole", func(r io.Reader) io.Reader { return r }}, {"one-byte", iotest.OneByteReader}, {"data-err", iotest.DataErrReader}} {
			t.Run(tt.name+"/"+rk.name, func(t *testing.T) {
				got, err := scanAll(rk.wrap(strings.NewReader(tt.in)))
				if (err != nil) != tt.wantErr {
					t.Fatalf("ScanRows err = %v, want error %v", err, tt.wantErr)
				}
				if fmt.Sprint(got) != fmt.Sprint(tt.want) {
					t.Fatalf("ScanRows = %v, want %v", got, tt.want)
				}
			})
		}
	}
}

func TestScanRowsStopsOnCallbackError(t *testing.T) {
	stop := errors.New("stop")
	calls := 0
	err := ScanRows(strings.NewReader("1,A,B,1,2000-01-01,1\n2,A,B,2,2000-01-01,2\n3,A,B,3,2000-01-01,3\n"),
		func(a int, _ []byte, _ int) error {
			calls++
			if a == 2 {
				return stop
			}
			return nil
		})
	if !errors.Is(err, stop) || calls != 2 {
		t.Fatalf("err = %v after %d calls; want stop after 2", err, calls)
	}
}

func TestScanRowsLongRow(t *testing.T) {
	in := "1,A,B,1,2000-01-01,1\n1," + strings.Repeat("ñ", 200<<10) + ",B,1,2000-01-01,1\n"
	got, err := scanAll(strings.NewReader(in))
	if err == nil || len(got) != 1 || !strings.Contains(err.Error(), "row 2") {
		t.Fatalf("ScanRows of a 400 KB row: %v after %d rows; want an error naming row 2", err, len(got))
	}
}

// TestScanRowsReadsAppendRow: whatever AppendRow writes of valid bets,
// ScanRows reads back.
func TestScanRowsReadsAppendRow(t *testing.T) {
	var file []byte
	var want []scanned
	names := []string{"Ana", "Ñandú", "El \"Chino\"", "Lorca, hijo", "Abadía"}
	for i := 0; i < 500; i++ {
		doc := strconv.Itoa(10000000 + i*7919)
		file = AppendRow(file, 1+i%5, names[i%5], names[(i/5)%5], doc, "1999-03-17", (i*37)%10000)
		want = append(want, scanned{1 + i%5, doc, (i * 37) % 10000})
	}
	got, err := scanAll(bytes.NewReader(file))
	if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("ScanRows of AppendRow's rows: %v; %d rows, want %d", err, len(got), len(want))
	}
}

func BenchmarkAppendRow(b *testing.B) {
	first, last := []byte("María José"), []byte("Ibáñez Güemes")
	doc, date := []byte("30904465"), []byte("1999-03-17")
	buf := make([]byte, 0, 256)
	buf = AppendRow(buf, 3, first, last, doc, date, 7574)
	b.ReportAllocs()
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		buf = AppendRow(buf[:0], 3, first, last, doc, date, 7574)
	}
}

func BenchmarkScanRows(b *testing.B) {
	var file []byte
	const rows = 10000
	for i := 0; i < rows; i++ {
		file = AppendRow(file, 1+i%5, "Santiago Lionel", "Abadía", strconv.Itoa(20000000+i*791), "1999-03-17", i%10000)
	}
	rd := bytes.NewReader(file)
	b.ReportAllocs()
	b.SetBytes(int64(len(file)))
	for b.Loop() {
		rd.Reset(file)
		n := 0
		if err := ScanRows(rd, func(int, []byte, int) error { n++; return nil }); err != nil || n != rows {
			b.Fatalf("%d rows, %v", n, err)
		}
	}
	b.ReportMetric(float64(b.N*rows)/b.Elapsed().Seconds(), "rows/s")
}

// TestNeedsQuotesAgainstContainsAny: the word-at-a-time scan agrees with
// strings.ContainsAny for every length up to 40 and every position of
// every special byte (and of bytes next to them in value).
func TestNeedsQuotesAgainstContainsAny(t *testing.T) {
	for n := 0; n <= 40; n++ {
		base := []byte(strings.Repeat("a", n))
		check := func(b []byte) {
			want := strings.ContainsAny(string(b), ",\"\r\n")
			if got := needsQuotes(b); got != want {
				t.Fatalf("needsQuotes(%q) = %v, want %v", b, got, want)
			}
			if got := needsQuotes(string(b)); got != want {
				t.Fatalf("needsQuotes(string %q) = %v, want %v", b, got, want)
			}
		}
		check(base)
		for i := 0; i < n; i++ {
			for _, c := range []byte{',', '"', '\r', '\n', '+', '-', '!', '#', '\t', '\v', 0x80, 0xac, 0xff, 0} {
				b := append([]byte(nil), base...)
				b[i] = c
				check(b)
			}
		}
	}
}

// TestPlainRowAgainstCountAndContainsAny: the word-at-a-time check agrees
// with strings.Count and strings.ContainsAny for every length up to 40
// and every position of one or two special bytes.
func TestPlainRowAgainstCountAndContainsAny(t *testing.T) {
	specials := []byte{',', '"', '\r', '\n', '-', '+', 0, 0x01, 0x2d, 0x80, 0xac, 0xff, 'a'}
	for n := 0; n <= 40; n++ {
		base := []byte(strings.Repeat("x", n))
		check := func(b []byte) {
			t.Helper()
			for commas := 0; commas <= 3; commas++ {
				want := strings.Count(string(b), ",") == commas && !strings.ContainsAny(string(b), "\"\r\n")
				if got := plainRow(b, commas); got != want {
					t.Fatalf("plainRow(%q, %d) = %v, want %v", b, commas, got, want)
				}
			}
		}
		check(base)
		for i := 0; i < n; i++ {
			for _, c := range specials {
				b := append([]byte(nil), base...)
				b[i] = c
				check(b)
				for j := i + 1; j < n; j++ {
					b2 := append([]byte(nil), b...)
					b2[j] = ','
					check(b2)
				}
			}
		}
	}
}

// TestAppendRowAgainstQuoteMinimal: rows of random fields drawn from an
// alphabet rich in the bytes that need quotes equal what Python's
// csv.QUOTE_MINIMAL writes (quote a field holding ',', '"', CR or LF, and
// double its quotes), written here independently.
func TestAppendRowAgainstQuoteMinimal(t *testing.T) {
	quote := func(f string) string {
		if !strings.ContainsAny(f, ",\"\r\n") {
			return f
		}
		return `"` + strings.ReplaceAll(f, `"`, `""`) + `"`
	}
	alphabet := []string{"a", "Z", " ", ",", `"`, "\r", "\n", "-", "ñ", "ü", "9", "\x01", "\x2d"}
	next := rand.New(rand.NewPCG(1, 1)).IntN // seeded: every run draws the same cases
	field := func() string {
		var b strings.Builder
		for range next(12) {
			b.WriteString(alphabet[next(len(alphabet))])
		}
		return b.String()
	}
	numbers := []int{0, 7, 9, 10, 99, 100, 999, 1000, 7574, 9999, 10000, 123456, -1, -10001}
	for i := 0; i < 20000; i++ {
		agency, number := numbers[next(len(numbers))], numbers[next(len(numbers))]
		f := [4]string{field(), field(), field(), field()}
		want := strconv.Itoa(agency) + "," + quote(f[0]) + "," + quote(f[1]) + "," + quote(f[2]) + "," + quote(f[3]) + "," + strconv.Itoa(number) + "\n"
		if got := AppendRow([]byte("x"), agency, f[0], f[1], f[2], f[3], number); string(got) != "x"+want {
			t.Fatalf("AppendRow(%d, %q, %d) = %q, want %q", agency, f, number, got[1:], want)
		}
		if got := AppendRow(nil, agency, []byte(f[0]), []byte(f[1]), []byte(f[2]), []byte(f[3]), number); string(got) != want {
			t.Fatalf("AppendRow([]byte: %d, %q, %d) = %q, want %q", agency, f, number, got, want)
		}
	}
}

// TestAppendBetRowIsAppendRow compares appendBetRow with AppendRow on
// generated bets and on names with '"' at the start, inside and at the end.
func TestAppendBetRowIsAppendRow(t *testing.T) {
	g := datagen.New(datagen.Options{Seed: 7, Agency: 3})
	quoted := []string{`"Pepe"`, `Ana "la Negra"`, `O"Neil`, `x"`, `"`, `""`}
	for i := range 20000 {
		bet := g.Next()
		first, last := bet.FirstName, bet.LastName
		switch i % 7 {
		case 1:
			first = quoted[i%len(quoted)]
		case 2:
			last = quoted[(i/7)%len(quoted)]
		}
		b := ledger.Bet{FirstName: []byte(first), LastName: []byte(last), Document: []byte(bet.Document),
			Birthdate: []byte(bet.Birthdate), Number: bet.Number}
		agency := 1 + i%1000
		got := string(appendBetRow([]byte("prefix\n"), agency, b))
		want := string(AppendRow([]byte("prefix\n"), agency, b.FirstName, b.LastName, b.Document, b.Birthdate, b.Number))
		if got != want {
			t.Fatalf("bet %d: appendBetRow wrote %q, AppendRow %q", i, got, want)
		}
	}
}

// TestValidationLeavesOnlyQuotesToQuote pins what appendBetRow relies on:
// of what lottery validation accepts, only a '"' in a name needs quotes.
// Every rune inside a name, and every byte at every position of a
// document and of a birthdate.
func TestValidationLeavesOnlyQuotesToQuote(t *testing.T) {
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if !utf8.ValidRune(r) {
			continue
		}
		name := "a" + string(r) + "b"
		if lottery.ValidateName(lottery.FieldFirstName, name) == nil && needsQuotes(name) && r != '"' {
			t.Fatalf("a name with %U passes validation and needs quotes", r)
		}
	}
	rules := lottery.NewRules(time.Date(2026, 12, 8, 0, 0, 0, 0, time.UTC))
	for i := range int64(14) {
		b := testBet(1, i)
		if _, err := rules.ValidateFields(b.FirstName, b.LastName, b.Document, b.Birthdate, []byte(strconv.Itoa(b.Number))); err != nil {
			t.Fatalf("the tests' bet %d is not a valid bet, which a ledger.Bet is: %v", i, err)
		}
	}
	for _, valid := range []string{"30904465", "1999-03-17"} {
		for i := range len(valid) {
			for c := range 256 {
				f := []byte(valid)
				f[i] = byte(c)
				var err error
				if valid[4] == '-' {
					_, err = lottery.ParseDate(f)
				} else {
					err = lottery.ValidateDocument(f)
				}
				if err == nil && needsQuotes(f) {
					t.Fatalf("%q passes validation and needs quotes", f)
				}
			}
		}
	}
}

// BenchmarkAppendBetRow encodes generated bets as the store's batches do.
func BenchmarkAppendBetRow(b *testing.B) {
	g := datagen.New(datagen.Options{Seed: 1, Agency: 1})
	var bets []ledger.Bet
	for range 4096 {
		bet := g.Next()
		bets = append(bets, ledger.Bet{FirstName: []byte(bet.FirstName), LastName: []byte(bet.LastName),
			Document: []byte(bet.Document), Birthdate: []byte(bet.Birthdate), Number: bet.Number})
	}
	for _, tc := range []struct {
		name   string
		encode func([]byte, int, ledger.Bet) []byte
	}{
		{"appendBetRow", appendBetRow},
		{"AppendRow", func(dst []byte, agency int, bet ledger.Bet) []byte {
			return AppendRow(dst, agency, bet.FirstName, bet.LastName, bet.Document, bet.Birthdate, bet.Number)
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			buf := make([]byte, 0, 64<<10)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if len(buf) > 60<<10 {
					buf = buf[:0]
				}
				buf = tc.encode(buf, 1+i%1000, bets[i%len(bets)])
				i++
			}
		})
	}
}
