package agency

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/loteria/loteria/observability"
	"github.com/loteria/loteria/services/internal/lottery"
	"github.com/loteria/loteria/services/internal/wire"
)

const frameLimit = 8192 // the seed's client: at most 8 KiB per frame, header included

// realTraceparent is a W3C traceparent as a real span writes it.
const realTraceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// sliceSource yields bets from a slice, then err (io.EOF when nil).
type sliceSource struct {
	bets []lottery.Bet
	err  error
}

func (s *sliceSource) Next() (lottery.Bet, error) {
	if len(s.bets) == 0 {
		if s.err != nil {
			return lottery.Bet{}, s.err
		}
		return lottery.Bet{}, io.EOF
	}
	b := s.bets[0]
	s.bets = s.bets[1:]
	return b, nil
}

// betLine is a bet's wire line, written here with fmt.
func betLine(b lottery.Bet) string {
	return fmt.Sprintf("%s;%s;%s;%s;%d\n", b.FirstName, b.LastName, b.Document, b.Birthdate, b.Number)
}

// headerLine is a batch header line, written here with fmt.
func headerLine(agency, count int, seq uint64, tp string) string {
	s := fmt.Sprintf("%d;%d", agency, count)
	if seq != 0 {
		s += fmt.Sprintf(";seq=%d", seq)
	}
	if tp != "" {
		s += ";traceparent=" + tp
	}
	return s + "\n"
}

// betOfLen is a valid bet of agency whose wire line is exactly l bytes,
// its first name made of "Ñ" (2 bytes each) and at most one "a".
func betOfLen(t testing.TB, agency, i, l int) lottery.Bet {
	b := lottery.Bet{Agency: agency, LastName: "Pérez", Document: fmt.Sprintf("3%07d", i), Birthdate: "1999-03-17", Number: 7574}
	name := l - len(betLine(b)) // the line with an empty first name
	if name < 1 {
		t.Fatalf("a line of %d bytes is too short", l)
	}
	b.FirstName = strings.Repeat("Ñ", name/2) + strings.Repeat("a", name%2)
	if got := len(betLine(b)); got != l {
		t.Fatalf("betOfLen(%d) made a line of %d bytes", l, got)
	}
	return b
}

// betsTotalling is n bets whose lines add up to exactly total bytes.
func betsTotalling(t testing.TB, agency, n, total int) []lottery.Bet {
	bets := make([]lottery.Bet, n)
	for i := range bets {
		l := total / n
		if i < total%n {
			l++
		}
		bets[i] = betOfLen(t, agency, i, l)
	}
	return bets
}

var (
	givenNames = []string{"Santiago Lionel", "Joaquina", "María José", "Ñandú", "José", "Inés", "Ramón", "Begoña",
		"Agustín", "Lucía Belén", "Martín Ángel", "Sofía", "Renée", "Zoë", "Íñigo", "Úrsula"}
	surnames = []string{"Lorca", "Abadía", "Núñez", "Ibáñez", "Peña", "Güemes", "Muñoz", "Pérez García", "Ordóñez",
		"Castaño", "D'Alessandro", "Echeverría", "Martínez de la Peña"}
)

// randomBets is n valid bets with UTF-8 names; with long, every 50th has a
// very long name so that line lengths vary widely.
func randomBets(seed uint64, agency, n int, long bool) []lottery.Bet {
	r := rand.New(rand.NewPCG(seed, 7))
	bets := make([]lottery.Bet, n)
	for i := range bets {
		first := givenNames[r.IntN(len(givenNames))]
		if long && i%50 == 49 {
			first = strings.Repeat("Ñandú José ", 1+r.IntN(200))
			first = strings.TrimSpace(first)
		}
		bets[i] = lottery.Bet{
			Agency:    agency,
			FirstName: first,
			LastName:  surnames[r.IntN(len(surnames))],
			Document:  strconv.Itoa(1000000 + r.IntN(99000000)),
			Birthdate: fmt.Sprintf("%04d-%02d-%02d", 1940+r.IntN(66), 1+r.IntN(12), 1+r.IntN(28)),
			Number:    r.IntN(10000),
		}
	}
	return bets
}

// decodedFrame is a frame taken apart without the wire package.
type decodedFrame struct {
	count int
	seq   uint64
	tp    string
	lines []string // bet lines, newline included
	body  int      // bytes of bet lines
}

func decodeFrame(t *testing.T, frame []byte, agency int) decodedFrame {
	t.Helper()
	if len(frame) < 8 {
		t.Fatalf("frame of %d bytes", len(frame))
	}
	size, err := strconv.Atoi(string(frame[:8]))
	if err != nil || size != len(frame)-8 {
		t.Fatalf("frame header %q for a payload of %d bytes", frame[:8], len(frame)-8)
	}
	payload := string(frame[8:])
	hdr, body, ok := strings.Cut(payload, "\n")
	if !ok {
		t.Fatalf("payload %q has no header line", payload)
	}
	var d decodedFrame
	d.body = len(body)
	parts := strings.Split(hdr, ";")
	if len(parts) < 2 || parts[0] != strconv.Itoa(agency) {
		t.Fatalf("header line %q", hdr)
	}
	if d.count, err = strconv.Atoi(parts[1]); err != nil {
		t.Fatalf("header line %q", hdr)
	}
	for _, kv := range parts[2:] {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "seq":
			if d.seq, err = strconv.ParseUint(v, 10, 64); err != nil {
				t.Fatalf("header line %q", hdr)
			}
		case "traceparent":
			d.tp = v
		default:
			t.Fatalf("header line %q has an unknown extension", hdr)
		}
	}
	if body != "" && !strings.HasSuffix(body, "\n") {
		t.Fatalf("body does not end in a newline")
	}
	for body != "" {
		line, rest, _ := strings.Cut(body, "\n")
		d.lines = append(d.lines, line+"\n")
		body = rest
	}
	if len(d.lines) != d.count {
		t.Fatalf("header says %d bets, %d lines follow", d.count, len(d.lines))
	}
	return d
}

type packCase struct {
	name     string
	bets     []lottery.Bet
	maxBets  int
	ext      bool // send seq and traceparent
	noTracer bool // with ext, the real traceparent is empty (tracing off)
}

// packAll drives the packer as the client does and checks every frame.
// It returns the frames' bet counts and byte sizes.
func packAll(t *testing.T, tc packCase) (counts, sizes []int) {
	t.Helper()
	const agency = 3
	for i := range tc.bets {
		tc.bets[i].Agency = agency
	}
	pk := &packer{agency: agency, maxBets: tc.maxBets, maxFrame: frameLimit, src: &sliceSource{bets: tc.bets}}
	var b batch
	next := 0 // index of the next bet expected
	for seq := uint64(1); ; seq++ {
		tmpl := wire.BatchHeader{Agency: agency}
		if tc.ext {
			tmpl.Seq = seq
			tmpl.Traceparent = []byte(traceparentTemplate)
		}
		n, err := pk.next(tmpl)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("batch %d: %v", seq, err)
		}
		real := wire.BatchHeader{Agency: agency}
		tp := ""
		if tc.ext {
			real.Seq = seq
			if !tc.noTracer {
				tp = realTraceparent
				real.Traceparent = []byte(tp)
			}
		}
		pk.assemble(&b, real)

		if len(b.frame) > frameLimit {
			t.Fatalf("batch %d: frame of %d bytes, limit %d", seq, len(b.frame), frameLimit)
		}
		d := decodeFrame(t, b.frame, agency)
		if d.count != n || b.bets != n || n < 1 || n > tc.maxBets {
			t.Fatalf("batch %d: next said %d bets, batch %d, header %d; max %d", seq, n, b.bets, d.count, tc.maxBets)
		}
		wantSeq := uint64(0)
		if tc.ext {
			wantSeq = seq
		}
		if d.seq != wantSeq || b.seq != wantSeq || d.tp != tp {
			t.Fatalf("batch %d: seq %d (batch %d) traceparent %q; want %d %q", seq, d.seq, b.seq, d.tp, wantSeq, tp)
		}
		for i, line := range d.lines {
			if next+i >= len(tc.bets) {
				t.Fatalf("batch %d: more bets than the source had", seq)
			}
			if want := betLine(tc.bets[next+i]); line != want {
				t.Fatalf("batch %d line %d = %q, want bet %d %q", seq, i, line, next+i, want)
			}
		}
		next += n
		// The frame as sized (with the template header) is within the limit,
		// and the packer stopped only because of a limit: one more bet would
		// have taken it over 8 KiB, or maxBets is reached, or no bet is left.
		sizedHeader := headerLine(agency, n, tmpl.Seq, string(tmpl.Traceparent))
		if 8+len(sizedHeader)+d.body > frameLimit {
			t.Fatalf("batch %d: sized frame of %d bytes", seq, 8+len(sizedHeader)+d.body)
		}
		if n < tc.maxBets && next < len(tc.bets) {
			bigger := 8 + len(headerLine(agency, n+1, tmpl.Seq, string(tmpl.Traceparent))) + d.body + len(betLine(tc.bets[next]))
			if bigger <= frameLimit {
				t.Fatalf("batch %d: %d bets in %d bytes, but bet %d would fit too (%d bytes)", seq, n, len(b.frame), next, bigger)
			}
		}
		counts = append(counts, n)
		sizes = append(sizes, len(b.frame))
	}
	if next != len(tc.bets) {
		t.Fatalf("%d of %d bets packed", next, len(tc.bets))
	}
	return counts, sizes
}

func TestPackerEveryBetOnceWithinLimits(t *testing.T) {
	var cases []packCase
	for _, maxBets := range []int{1, 7, 10, 100, 1000, 1 << 20} {
		for _, ext := range []bool{false, true} {
			cases = append(cases, packCase{
				name:    fmt.Sprintf("max %d ext %v", maxBets, ext),
				bets:    randomBets(uint64(maxBets), 3, 3000, true),
				maxBets: maxBets,
				ext:     ext,
			})
		}
	}
	cases = append(cases, packCase{name: "tracing off", bets: randomBets(9, 3, 3000, true), maxBets: 1000, ext: true, noTracer: true})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			counts, sizes := packAll(t, tc)
			minSize, maxSize := frameLimit, 0
			for _, s := range sizes[:len(sizes)-1] {
				minSize, maxSize = min(minSize, s), max(maxSize, s)
			}
			t.Logf("%d frames, sizes %d..%d bytes (last %d bets)", len(counts), minSize, maxSize, counts[len(counts)-1])
		})
	}
}

// TestPackerByteBoundary builds bets whose multi-byte names bring a frame
// to exactly 8,192 bytes, or one byte over, and checks where the packer
// splits. Counting characters instead of bytes, or forgetting that the
// header's count can grow a digit, would split elsewhere.
func TestPackerByteBoundary(t *testing.T) {
	noExt := func(count int) int { return len(headerLine(3, count, 0, "")) }
	ext := func(count int) int { return len(headerLine(3, count, 1, traceparentTemplate)) }
	tests := []struct {
		name      string
		n         int // bets in the group under test
		hdrLen    func(count int) int
		extra     int // bytes over an exact fill (0 or 1)
		useExt    bool
		noTracer  bool
		wantFirst int // bets in the first frame
		wantSize  int // bytes of the first frame
	}{
		{name: "100 bets fill 8192 exactly", n: 100, hdrLen: noExt, extra: 0, wantFirst: 100, wantSize: frameLimit},
		{name: "100 bets one byte over", n: 100, hdrLen: noExt, extra: 1, wantFirst: 99},
		{name: "10 bets fill 8192 exactly", n: 10, hdrLen: noExt, extra: 0, wantFirst: 10, wantSize: frameLimit},
		{name: "10 bets one byte over: the count's extra digit", n: 10, hdrLen: noExt, extra: 1, wantFirst: 9},
		{name: "1 bet fills 8192 exactly", n: 1, hdrLen: noExt, extra: 0, wantFirst: 1, wantSize: frameLimit},
		{name: "with extensions, exact", n: 100, hdrLen: ext, extra: 0, useExt: true, wantFirst: 100, wantSize: frameLimit},
		{name: "with extensions, one byte over", n: 100, hdrLen: ext, extra: 1, useExt: true, wantFirst: 99},
		{name: "with extensions, tracing off", n: 100, hdrLen: ext, extra: 0, useExt: true, noTracer: true,
			wantFirst: 100, wantSize: frameLimit - len(";traceparent=") - len(traceparentTemplate)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := frameLimit - 8 - tt.hdrLen(tt.n) + tt.extra
			bets := betsTotalling(t, 3, tt.n, body)
			chars := 0
			for _, b := range bets {
				chars += utf8.RuneCountInString(betLine(b))
			}
			if chars > body-tt.n*10 {
				t.Fatalf("test data: %d characters in %d bytes is not multi-byte enough", chars, body)
			}
			// A small bet after them, so the packer has more to take.
			bets = append(bets, betOfLen(t, 3, 999, 40))
			counts, sizes := packAll(t, packCase{name: tt.name, bets: bets, maxBets: 1000, ext: tt.useExt, noTracer: tt.noTracer})
			if counts[0] != tt.wantFirst {
				t.Fatalf("first frame has %d bets, want %d", counts[0], tt.wantFirst)
			}
			if tt.wantSize != 0 && sizes[0] != tt.wantSize {
				t.Fatalf("first frame is %d bytes, want %d", sizes[0], tt.wantSize)
			}
		})
	}
}

func TestPackerMaxBets(t *testing.T) {
	for _, tt := range []struct{ bets, max int }{{1, 1}, {10, 1}, {10, 3}, {21, 7}, {100, 100}, {101, 100}, {250, 100}} {
		t.Run(fmt.Sprintf("%d bets max %d", tt.bets, tt.max), func(t *testing.T) {
			counts, _ := packAll(t, packCase{bets: randomBets(1, 3, tt.bets, false), maxBets: tt.max})
			// Bets short enough that 100 always fit in 8 KiB: only maxBets limits.
			want := []int{}
			for left := tt.bets; left > 0; left -= tt.max {
				want = append(want, min(left, tt.max))
			}
			if fmt.Sprint(counts) != fmt.Sprint(want) {
				t.Fatalf("frames of %v bets, want %v", counts, want)
			}
		})
	}
}

func TestPackerBetTooLarge(t *testing.T) {
	fitsAlone := frameLimit - 8 - len(headerLine(3, 1, 0, ""))
	fitsAloneExt := frameLimit - 8 - len(headerLine(3, 1, 1, traceparentTemplate))
	tests := []struct {
		name    string
		bets    []lottery.Bet
		ext     bool
		wantOK  int // bets packed before the error
		wantErr bool
	}{
		{name: "4100 Ñ: 4100 characters, 8200 bytes", bets: []lottery.Bet{{FirstName: strings.Repeat("Ñ", 4100), LastName: "Pérez", Document: "1", Birthdate: "2000-01-01", Number: 1}}, wantErr: true},
		{name: "exactly the room of a frame", bets: []lottery.Bet{betOfLen(t, 3, 1, fitsAlone)}, wantOK: 1},
		{name: "one byte more than a frame holds", bets: []lottery.Bet{betOfLen(t, 3, 1, fitsAlone+1)}, wantErr: true},
		{name: "with extensions, exactly the room", bets: []lottery.Bet{betOfLen(t, 3, 1, fitsAloneExt)}, ext: true, wantOK: 1},
		{name: "with extensions, one byte more", bets: []lottery.Bet{betOfLen(t, 3, 1, fitsAloneExt+1)}, ext: true, wantErr: true},
		{name: "after good bets", bets: append(randomBets(2, 3, 5, false), betOfLen(t, 3, 1, fitsAlone+1), betOfLen(t, 3, 2, 40)), wantOK: 5, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pk := &packer{agency: 3, maxBets: 1000, maxFrame: frameLimit, src: &sliceSource{bets: tt.bets}}
			packed := 0
			var err error
			for seq := uint64(1); ; seq++ {
				tmpl := wire.BatchHeader{Agency: 3}
				if tt.ext {
					tmpl.Seq, tmpl.Traceparent = seq, []byte(traceparentTemplate)
				}
				var n int
				n, err = pk.next(tmpl)
				if err != nil {
					break
				}
				var b batch
				pk.assemble(&b, tmpl)
				if len(b.frame) > frameLimit {
					t.Fatalf("frame of %d bytes", len(b.frame))
				}
				packed += n
			}
			if packed != tt.wantOK {
				t.Fatalf("%d bets packed before %v, want %d", packed, err, tt.wantOK)
			}
			if tt.wantErr != errors.Is(err, errBetTooLarge) {
				t.Fatalf("err = %v, want errBetTooLarge: %v", err, tt.wantErr)
			}
			if !tt.wantErr && !errors.Is(err, io.EOF) {
				t.Fatalf("err = %v, want io.EOF", err)
			}
		})
	}
}

func TestPackerSourceError(t *testing.T) {
	boom := errors.New("bad line 4")
	pk := &packer{agency: 1, maxBets: 100, maxFrame: frameLimit, src: &sliceSource{bets: randomBets(3, 1, 3, false), err: boom}}
	if _, err := pk.next(wire.BatchHeader{Agency: 1}); !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the source's error", err)
	}
}

func TestPackerEmptySource(t *testing.T) {
	pk := &packer{agency: 1, maxBets: 100, maxFrame: frameLimit, src: &sliceSource{}}
	for i := 0; i < 2; i++ {
		if n, err := pk.next(wire.BatchHeader{Agency: 1}); n != 0 || !errors.Is(err, io.EOF) {
			t.Fatalf("next on an empty source = %d, %v; want io.EOF", n, err)
		}
	}
}

// TestTraceparentTemplate: every traceparent a real span gives is exactly
// as long as the template frames are sized with, so the real header never
// exceeds the sized one.
func TestTraceparentTemplate(t *testing.T) {
	if len(traceparentTemplate) != len(realTraceparent) {
		t.Fatalf("template of %d bytes, W3C traceparents have %d", len(traceparentTemplate), len(realTraceparent))
	}
	for _, sampler := range []sdktrace.Sampler{sdktrace.AlwaysSample(), sdktrace.NeverSample()} {
		tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sampler))
		for i := 0; i < 20; i++ {
			ctx, span := tp.Tracer("test").Start(context.Background(), "agency.send_batch")
			got := observability.Traceparent(ctx)
			span.End()
			if len(got) != len(traceparentTemplate) {
				t.Fatalf("traceparent %q of %d bytes, template %d", got, len(got), len(traceparentTemplate))
			}
			for _, seq := range []uint64{1, 9, 10, 12345} {
				sized := wire.BatchHeader{Agency: 5, Count: 100, Seq: seq, Traceparent: []byte(traceparentTemplate)}
				real := wire.BatchHeader{Agency: 5, Count: 100, Seq: seq, Traceparent: []byte(got)}
				if len(headerLine(5, 100, seq, got)) > wire.HeaderLineLen(sized) || wire.HeaderLineLen(real) > wire.HeaderLineLen(sized) {
					t.Fatalf("real header %q longer than the sized one", headerLine(5, 100, seq, got))
				}
			}
		}
		if err := tp.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}
