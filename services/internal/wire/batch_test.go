package wire

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

const tp55 = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

type bet5 = [NumFields]string

func fieldsToStrings(bets []BetFields) []bet5 {
	out := make([]bet5, len(bets))
	for i, b := range bets {
		for j := range b {
			out[i][j] = string(b[j])
		}
	}
	return out
}

func TestParseBatch(t *testing.T) {
	tests := []struct {
		name     string
		payload  string
		want     BatchHeader
		wantBets []bet5
		errLine  int // -1: no error
	}{
		{
			name:    "seed batch",
			payload: "1;2\nSantiago Lionel;Lorca;30904465;1999-03-17;2201\nJoaquina;Abadía;29521189;1998-02-28;7574\n",
			want:    BatchHeader{Agency: 1, Count: 2},
			wantBets: []bet5{
				{"Santiago Lionel", "Lorca", "30904465", "1999-03-17", "2201"},
				{"Joaquina", "Abadía", "29521189", "1998-02-28", "7574"},
			},
			errLine: -1,
		},
		{
			name:     "no final newline",
			payload:  "5;1\nA;B;1;2000-01-01;0",
			want:     BatchHeader{Agency: 5, Count: 1},
			wantBets: []bet5{{"A", "B", "1", "2000-01-01", "0"}},
			errLine:  -1,
		},
		{
			name:     "utf-8 names kept byte for byte",
			payload:  "3;1\nÑandú José;Pérez Güemes;1;2000-02-29;9999\n",
			want:     BatchHeader{Agency: 3, Count: 1},
			wantBets: []bet5{{"Ñandú José", "Pérez Güemes", "1", "2000-02-29", "9999"}},
			errLine:  -1,
		},
		{
			name:     "CRLF is structure the parser leaves to validation",
			payload:  "1;1\r\nA;B;1;2000-01-01;7\r\n",
			errLine:  1, // "1\r" is not a count
			wantBets: nil,
		},
		{
			name:     "CR at the end of a bet line stays in the number",
			payload:  "1;1\nA;B;1;2000-01-01;7\r\n",
			want:     BatchHeader{Agency: 1, Count: 1},
			wantBets: []bet5{{"A", "B", "1", "2000-01-01", "7\r"}},
			errLine:  -1,
		},
		{name: "empty batch", payload: "4;0\n", want: BatchHeader{Agency: 4, Count: 0}, errLine: -1},
		{name: "empty batch without newline", payload: "4;0", want: BatchHeader{Agency: 4, Count: 0}, errLine: -1},
		{name: "leading zeros", payload: "007;0000\n", want: BatchHeader{Agency: 7, Count: 0}, errLine: -1},
		{name: "nine-digit agency", payload: "999999999;0\n", want: BatchHeader{Agency: 999999999}, errLine: -1},
		{
			name:     "seq extension",
			payload:  "1;1;seq=42\nA;B;1;2000-01-01;1\n",
			want:     BatchHeader{Agency: 1, Count: 1, Seq: 42},
			wantBets: []bet5{{"A", "B", "1", "2000-01-01", "1"}},
			errLine:  -1,
		},
		{name: "seq max uint64", payload: "1;0;seq=18446744073709551615\n", want: BatchHeader{Agency: 1, Seq: math.MaxUint64}, errLine: -1},
		{name: "traceparent extension", payload: "2;0;traceparent=" + tp55 + "\n", want: BatchHeader{Agency: 2, Traceparent: []byte(tp55)}, errLine: -1},
		{name: "both extensions", payload: "2;0;seq=3;traceparent=" + tp55 + "\n", want: BatchHeader{Agency: 2, Seq: 3, Traceparent: []byte(tp55)}, errLine: -1},
		{name: "both extensions, other order", payload: "2;0;traceparent=" + tp55 + ";seq=3\n", want: BatchHeader{Agency: 2, Seq: 3, Traceparent: []byte(tp55)}, errLine: -1},
		{name: "unknown keys ignored", payload: "2;0;zone=ar;seq=9;flag;=x;tracestate=a=b\n", want: BatchHeader{Agency: 2, Seq: 9}, errLine: -1},
		{name: "empty extension ignored", payload: "2;0;\n", want: BatchHeader{Agency: 2}, errLine: -1},
		{name: "traceparent of 128 bytes", payload: "2;0;traceparent=" + strings.Repeat("a", 128) + "\n", want: BatchHeader{Agency: 2, Traceparent: bytes.Repeat([]byte("a"), 128)}, errLine: -1},
		{name: "traceparent of 129 bytes", payload: "2;0;traceparent=" + strings.Repeat("a", 129) + "\n", errLine: 1},
		{name: "seq not a number", payload: "1;0;seq=abc\n", errLine: 1},
		{name: "seq negative", payload: "1;0;seq=-1\n", errLine: 1},
		{name: "seq empty", payload: "1;0;seq=\n", errLine: 1},
		{name: "seq overflows uint64", payload: "1;0;seq=18446744073709551616\n", errLine: 1},
		{name: "empty payload", payload: "", errLine: 1},
		{name: "END is not a batch", payload: "END", errLine: 1},
		{name: "header without separator", payload: "1\nA;B;1;2000-01-01;1\n", errLine: 1},
		{name: "agency missing", payload: ";1\nA;B;1;2000-01-01;1\n", errLine: 1},
		{name: "count missing", payload: "1;\n", errLine: 1},
		{name: "agency not a number", payload: "x;0\n", errLine: 1},
		{name: "negative agency", payload: "-1;0\n", errLine: 1},
		{name: "agency with space", payload: " 1;0\n", errLine: 1},
		{name: "count not a number", payload: "1;one\n", errLine: 1},
		{name: "count negative", payload: "1;-1\n", errLine: 1},
		{name: "ten-digit agency", payload: "1234567890;0\n", errLine: 1},
		{name: "ten-digit count", payload: "1;1234567890\n", errLine: 1},
		{name: "count the payload cannot hold", payload: "1;999999999\nA;B;1;2000-01-01;1\n", errLine: 1},
		{name: "fewer lines than announced", payload: "1;3\nA;B;1;2000-01-01;1\nA;B;1;2000-01-01;1\n", errLine: 0},
		{name: "more lines than announced", payload: "1;1\nA;B;1;2000-01-01;1\nA;B;2;2000-01-01;2\n", errLine: 3},
		{name: "blank line at the end", payload: "1;1\nA;B;1;2000-01-01;1\n\n", errLine: 3},
		{name: "blank line in the middle", payload: "1;2\nA;B;1;2000-01-01;1\n\nA;B;1;2000-01-01;1\n", errLine: 3},
		{name: "four fields", payload: "1;2\nA;B;1;2000-01-01;1\nA;B;1;2000-01-01\n", errLine: 3},
		{name: "six fields", payload: "1;1\nA;B;1;2000-01-01;1;extra\n", errLine: 2},
		{name: "comma separated", payload: "1;1\nA,B,1,2000-01-01,1\n", errLine: 2},
		// The doc comment promises "five non-empty fields per line".
		{name: "empty first name", payload: "1;1\n;Pérez;1;2000-01-01;1\n", errLine: 2},
		{name: "empty number", payload: "1;1\nAna;Pérez;1;2000-01-01;\n", errLine: 2},
		{name: "all fields empty", payload: "1;1\n;;;;\n", errLine: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, bets, err := ParseBatch([]byte(tt.payload), nil)
			if tt.errLine >= 0 {
				var be *BatchError
				if !errors.As(err, &be) {
					t.Fatalf("ParseBatch(%q) = %+v, %d bets, %v; want a *BatchError", tt.payload, h, len(bets), err)
				}
				if be.Line != tt.errLine {
					t.Fatalf("error %q on line %d, want line %d", err, be.Line, tt.errLine)
				}
				if tt.errLine > 0 && !strings.HasPrefix(err.Error(), "line "+strconv.Itoa(tt.errLine)+": ") {
					t.Fatalf("error %q does not name line %d", err, tt.errLine)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseBatch(%q): %v", tt.payload, err)
			}
			if h.Agency != tt.want.Agency || h.Count != tt.want.Count || h.Seq != tt.want.Seq || !bytes.Equal(h.Traceparent, tt.want.Traceparent) {
				t.Fatalf("header = %+v, want %+v", h, tt.want)
			}
			if got := fieldsToStrings(bets); fmt.Sprint(got) != fmt.Sprint(tt.wantBets) || len(got) != len(tt.wantBets) {
				t.Fatalf("bets = %q, want %q", got, tt.wantBets)
			}
		})
	}
}

func TestParseBatchReusesDst(t *testing.T) {
	payload := buildBatch(1, 40)
	dst := make([]BetFields, 0, 64)
	_, bets, err := ParseBatch(payload, dst)
	if err != nil {
		t.Fatal(err)
	}
	if len(bets) != 40 || &bets[0] != &dst[:1][0] {
		t.Fatal("bets not parsed into dst")
	}
	// A second parse starts over from dst[:0] even when given dst with
	// elements, and an error still hands dst back for reuse.
	_, bets2, err := ParseBatch([]byte("1;1\nA;B;1;2000-01-01;1\n"), bets)
	if err != nil || len(bets2) != 1 || string(bets2[0][0]) != "A" {
		t.Fatalf("second parse: %d bets, %v", len(bets2), err)
	}
	_, bets3, err := ParseBatch([]byte("1;2\nA;B;1;2000-01-01;1\nbad\n"), bets2)
	if err == nil || cap(bets3) != cap(dst) {
		t.Fatalf("failed parse returned cap %d, %v; want dst back", cap(bets3), err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		_, b, err := ParseBatch(payload, dst)
		if err != nil || len(b) != 40 {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("ParseBatch with a reused dst: %v allocs, want 0", allocs)
	}
}

func TestIsEnd(t *testing.T) {
	for in, want := range map[string]bool{"END": true, "END\n": false, "end": false, "": false, "ENDS": false, "00000003END": false} {
		if got := IsEnd([]byte(in)); got != want {
			t.Errorf("IsEnd(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestBatchHeaderEncoding(t *testing.T) {
	tests := []struct {
		h    BatchHeader
		want string
	}{
		{BatchHeader{Agency: 1, Count: 0}, "1;0\n"},
		{BatchHeader{Agency: 1, Count: 9}, "1;9\n"},
		{BatchHeader{Agency: 1, Count: 10}, "1;10\n"},
		{BatchHeader{Agency: 12, Count: 100}, "12;100\n"},
		{BatchHeader{Agency: 999999999, Count: 999999999}, "999999999;999999999\n"},
		{BatchHeader{Agency: 3, Count: 7, Seq: 1}, "3;7;seq=1\n"},
		{BatchHeader{Agency: 3, Count: 7, Seq: 10}, "3;7;seq=10\n"},
		{BatchHeader{Agency: 3, Count: 7, Seq: math.MaxUint64}, "3;7;seq=18446744073709551615\n"},
		{BatchHeader{Agency: 3, Count: 7, Traceparent: []byte(tp55)}, "3;7;traceparent=" + tp55 + "\n"},
		{BatchHeader{Agency: 3, Count: 7, Seq: 99, Traceparent: []byte(tp55)}, "3;7;seq=99;traceparent=" + tp55 + "\n"},
		{BatchHeader{Agency: 3, Count: 7, Traceparent: []byte{}}, "3;7\n"},
	}
	for _, tt := range tests {
		t.Run(strings.TrimSpace(tt.want), func(t *testing.T) {
			got := AppendBatchHeader([]byte("x"), tt.h)
			if string(got) != "x"+tt.want {
				t.Fatalf("AppendBatchHeader = %q, want %q", got[1:], tt.want)
			}
			if n := HeaderLineLen(tt.h); n != len(tt.want) {
				t.Fatalf("HeaderLineLen = %d, want %d", n, len(tt.want))
			}
			// It parses back when Count lines follow (Count 0 only, to keep
			// it short; the rest is covered by the round-trip test).
			if tt.h.Count == 0 {
				h, _, err := ParseBatch(got[1:], nil)
				if err != nil || h.Agency != tt.h.Agency || h.Seq != tt.h.Seq || !bytes.Equal(h.Traceparent, tt.h.Traceparent) {
					t.Fatalf("parsed back %+v, %v", h, err)
				}
			}
		})
	}
}

func TestBetLineEncoding(t *testing.T) {
	tests := []struct {
		first, last, doc, date string
		number                 int
	}{
		{"Santiago Lionel", "Lorca", "30904465", "1999-03-17", 2201},
		{"A", "B", "1", "2000-01-01", 0},
		{"A", "B", "1", "2000-01-01", 9},
		{"A", "B", "1", "2000-01-01", 10},
		{"A", "B", "1", "2000-01-01", 99},
		{"A", "B", "1", "2000-01-01", 100},
		{"A", "B", "1", "2000-01-01", 9999},
		{"Ñandú", "Pérez", "12345678", "2000-02-29", 7574},
		{"María José", "Ibáñez Güemes", "123456789012345678", "1940-12-31", 1000},
		{strings.Repeat("Ñ", 100), strings.Repeat("é", 100), "1", "2000-01-01", 1},
	}
	for _, tt := range tests {
		want := fmt.Sprintf("%s;%s;%s;%s;%d\n", tt.first, tt.last, tt.doc, tt.date, tt.number)
		got := AppendBetLine([]byte("x"), tt.first, tt.last, tt.doc, tt.date, tt.number)
		if string(got) != "x"+want {
			t.Errorf("AppendBetLine = %q, want %q", got[1:], want)
		}
		if n := BetLineLen(tt.first, tt.last, tt.doc, tt.date, tt.number); n != len(want) {
			t.Errorf("BetLineLen(%q...) = %d, want %d bytes (%d characters)", tt.first, n, len(want), utf8.RuneCountInString(want))
		}
	}
}

// buildBatch is a batch of n bets of agency built with fmt, not with the
// encoder under test.
func buildBatch(agency, n int) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "%d;%d\n", agency, n)
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "Nombre%d José;Pérez Ñúñez;%d;19%02d-0%d-1%d;%d\n", i, 20000000+i*7919, i%100, 1+i%9, i%10, (i*37)%10000)
	}
	return []byte(b.String())
}

func TestBatchRoundTrip(t *testing.T) {
	type bet struct {
		first, last, doc, date string
		number                 int
	}
	bets := []bet{
		{"Santiago Lionel", "Lorca", "30904465", "1999-03-17", 2201},
		{"Ñandú", "Abadía", "1", "2000-02-29", 0},
		{"Zoë", "D'Alessandro", "99999999", "2023-04-30", 7574},
	}
	for _, h := range []BatchHeader{
		{Agency: 1},
		{Agency: 2, Seq: 17},
		{Agency: 3, Seq: 1, Traceparent: []byte(tp55)},
	} {
		h.Count = len(bets)
		p := AppendBatchHeader(nil, h)
		wantLen := HeaderLineLen(h)
		for _, b := range bets {
			p = AppendBetLine(p, b.first, b.last, b.doc, b.date, b.number)
			wantLen += BetLineLen(b.first, b.last, b.doc, b.date, b.number)
		}
		if len(p) != wantLen {
			t.Fatalf("payload %d bytes, lengths say %d", len(p), wantLen)
		}
		got, fields, err := ParseBatch(p, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got.Agency != h.Agency || got.Count != h.Count || got.Seq != h.Seq || !bytes.Equal(got.Traceparent, h.Traceparent) {
			t.Fatalf("header %+v, want %+v", got, h)
		}
		for i, f := range fields {
			b := bets[i]
			want := bet5{b.first, b.last, b.doc, b.date, strconv.Itoa(b.number)}
			if fieldsToStrings(fields[i : i+1])[0] != want {
				t.Fatalf("bet %d = %q, want %q", i, f, want)
			}
		}
	}
}

// FuzzParseBatch: arbitrary payloads never panic; an accepted batch has as
// many bet lines as it announces, and re-encoding what was parsed parses to
// the same batch.
func FuzzParseBatch(f *testing.F) {
	f.Add([]byte("1;2\nSantiago Lionel;Lorca;30904465;1999-03-17;2201\nJoaquina;Abadía;29521189;1998-02-28;7574\n"))
	f.Add([]byte("1;0\n"))
	f.Add([]byte("1;0"))
	f.Add([]byte("1;1;seq=5;traceparent=" + tp55 + "\nÑandú;Pérez;1;2000-02-29;1"))
	f.Add([]byte("1;1;foo=bar;seq=1\nA;B;C;D;E\n"))
	f.Add([]byte("1;1\n;;;;\n"))
	f.Add([]byte("1;2\nA;B;C;D;E\n\n"))
	f.Add([]byte("1;999999999\n"))
	f.Add([]byte("END"))
	f.Add([]byte(""))
	f.Add(buildBatch(3, 50))
	f.Fuzz(func(t *testing.T, payload []byte) {
		h, bets, err := ParseBatch(payload, nil)
		if err != nil {
			var be *BatchError
			if !errors.As(err, &be) {
				t.Fatalf("error %v is not a *BatchError", err)
			}
			return
		}
		if len(bets) != h.Count {
			t.Fatalf("%d bets, header says %d", len(bets), h.Count)
		}
		// Count the lines independently: the header line, then one line per
		// bet, the last newline optional.
		body := payload
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			body = body[i+1:]
		} else {
			body = nil
		}
		lines := bytes.Count(body, []byte("\n"))
		if len(body) > 0 && body[len(body)-1] != '\n' {
			lines++
		}
		if lines != h.Count {
			t.Fatalf("%d bet lines, header says %d", lines, h.Count)
		}
		if h.Agency < 0 || h.Count < 0 || len(h.Traceparent) > MaxTraceparentLen {
			t.Fatalf("header out of range: %+v", h)
		}
		// Re-encode and parse again.
		re := AppendBatchHeader(nil, h)
		if len(re) != HeaderLineLen(h) {
			t.Fatalf("HeaderLineLen %d, header line %q", HeaderLineLen(h), re)
		}
		for _, b := range bets {
			for i, fld := range b {
				if bytes.ContainsAny(fld, ";\n") {
					t.Fatalf("field %d %q holds a separator", i, fld)
				}
				if i > 0 {
					re = append(re, ';')
				}
				re = append(re, fld...)
			}
			re = append(re, '\n')
		}
		h2, bets2, err := ParseBatch(re, nil)
		if err != nil {
			t.Fatalf("re-encoded %q does not parse: %v", re, err)
		}
		if h2.Agency != h.Agency || h2.Count != h.Count || h2.Seq != h.Seq || !bytes.Equal(h2.Traceparent, h.Traceparent) {
			t.Fatalf("header %+v re-parsed as %+v", h, h2)
		}
		for i := range bets {
			for j := range bets[i] {
				if !bytes.Equal(bets[i][j], bets2[i][j]) {
					t.Fatalf("bet %d field %d: %q re-parsed as %q", i, j, bets[i][j], bets2[i][j])
				}
			}
		}
	})
}

// TestSplitBetAgainstStringsSplit: the word-at-a-time cut agrees with
// strings.Split on every line of up to 30 bytes drawn from an alphabet of
// ';', bytes near it in value and UTF-8, at every alignment.
func TestSplitBetAgainstStringsSplit(t *testing.T) {
	alphabet := []string{";", "a", ":", "<", "\xbb", "ñ", "7", "-"}
	next := rand.New(rand.NewPCG(7, 7)).IntN // seeded: every run draws the same cases
	for i := 0; i < 50000; i++ {
		var b strings.Builder
		for b.Len() < next(31) {
			b.WriteString(alphabet[next(len(alphabet))])
		}
		line := b.String()
		parts := strings.Split(line, ";")
		var f BetFields
		err := splitBet([]byte(line), &f)
		switch {
		case len(parts) < NumFields:
			if err == nil || !strings.HasPrefix(err.Error(), strconv.Itoa(len(parts))+" fields") {
				t.Fatalf("splitBet(%q) = %v, want %d fields", line, err, len(parts))
			}
		case len(parts) > NumFields:
			if err == nil || !strings.HasPrefix(err.Error(), "more than 5 fields") {
				t.Fatalf("splitBet(%q) = %v, want more than 5 fields", line, err)
			}
		case slices.Contains(parts, ""):
			if err == nil || !strings.HasPrefix(err.Error(), "empty ") {
				t.Fatalf("splitBet(%q) = %v, want an empty field", line, err)
			}
		default:
			if err != nil {
				t.Fatalf("splitBet(%q): %v", line, err)
			}
			for k := range f {
				if string(f[k]) != parts[k] {
					t.Fatalf("splitBet(%q) field %d = %q, want %q", line, k, f[k], parts[k])
				}
			}
		}
	}
}
