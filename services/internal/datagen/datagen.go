// Package datagen generates realistic, deterministic agency bet files in the
// dataset format of the Lotería Nacional exercise: one bet per line,
// "nombre,apellido,documento,nacimiento,numero" followed by CRLF, UTF-8, no
// header.
//
// The data is synthetic: Spanish/Argentine given names (one or two) and
// surnames from lists written for this package, birthdates uniform over every
// day of 1940..2005, a DNI that grows with the birth year as real ones do
// (7 or 8 digits), and a number uniform over 0..9999 with an extra chance of
// playing lottery.WinningNumber (see Options.WinnerRatio).
//
// A Generator is a pure function of (Options.Seed, Options.Agency): it draws
// only from a math/rand/v2 PCG source, whose algorithm is fixed, and maps the
// draws with integer arithmetic of its own, so the same options give the same
// bets on every machine and Go version.
package datagen

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"math/bits"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/loteria/loteria/services/internal/betfile"
	"github.com/loteria/loteria/services/internal/lottery"
)

// DefaultWinnerRatio is the WinnerRatio used when Options.WinnerRatio is 0:
// about 2 winners per 1000 bets, so a file of a few hundred bets usually has
// one and a file of 10,000 has about 21.
const DefaultWinnerRatio = 0.002

// Options selects a bet sequence.
type Options struct {
	// Seed and Agency together determine the whole sequence.
	Seed uint64
	// Agency is copied into every Bet.Agency (and changes the sequence).
	Agency int
	// WinnerRatio is the probability that a bet plays lottery.WinningNumber
	// on purpose; the other bets play a number uniform over 0..9999, which
	// is also the winning one with probability 1/10000. So the expected
	// share of winners is WinnerRatio + (1-WinnerRatio)/10000.
	//
	// 0 means DefaultWinnerRatio; a negative value means no extra winners
	// (numbers purely uniform); values above 1 count as 1.
	WinnerRatio float64
}

// ratio returns the effective WinnerRatio, in [0, 1].
func (o Options) ratio() float64 {
	r := o.WinnerRatio
	switch {
	case r == 0 || math.IsNaN(r):
		return DefaultWinnerRatio
	case r < 0:
		return 0
	case r > 1:
		return 1
	}
	return r
}

// ExpectedWinnerShare is the expected fraction of bets that play
// lottery.WinningNumber under opts.
func ExpectedWinnerShare(opts Options) float64 {
	r := opts.ratio()
	return r + (1-r)/(lottery.MaxNumber+1)
}

const (
	// batchSize bets are generated at a time so that their documents share
	// one string allocation. The sequence does not depend on it.
	batchSize = 256
	// twoNamesIn1024 is how often (out of 1024) a person has two given names.
	twoNamesIn1024 = 640
	// docJitter spreads the DNI of people born the same day: ±docJitter.
	docJitter = 1_000_000
	// maxDocLen is the longest DNI the generator writes (8 digits).
	maxDocLen = 8
)

// Generator produces an endless, deterministic sequence of valid bets.
// It is not safe for concurrent use; give each goroutine its own.
type Generator struct {
	src    rand.PCG
	t      *tables
	agency int
	// winThreshold: a 53-bit draw below it plays the winning number.
	winThreshold uint64

	// The pending bets of the batch, as indices into the tables (no
	// pointers, so filling them costs no GC write barriers).
	slots  [batchSize]slot
	pos    int
	docs   string // the documents of the batch, back to back
	digits []byte // scratch for docs
}

type slot struct {
	given   uint32 // index into tables.given
	surname uint16 // index into surnames
	day     uint16 // index into tables.dates
	number  uint16
	docOff  uint16 // Document is docs[docOff:docOff+docLen]
	docLen  uint8
}

// New returns the generator for opts.
func New(opts Options) *Generator {
	a := splitmix64(uint64(int64(opts.Agency)) ^ 0x6c6f7465726961) // "loteria"
	s1 := splitmix64(opts.Seed ^ a)
	s2 := splitmix64(s1 + a)
	g := &Generator{
		t:            loadTables(),
		agency:       opts.Agency,
		winThreshold: uint64(opts.ratio() * (1 << 53)), // exact: power-of-two scaling
		pos:          batchSize,
		digits:       make([]byte, 0, batchSize*maxDocLen),
	}
	g.src.Seed(s1, s2)
	return g
}

// Next returns the next bet. Its strings are immutable and stay valid
// forever; producing a bet allocates only one small shared string every
// batchSize bets.
func (g *Generator) Next() lottery.Bet {
	if g.pos == batchSize {
		g.refill()
	}
	s := &g.slots[g.pos]
	g.pos++
	d := int(s.day) * dateLen
	return lottery.Bet{
		Agency:    g.agency,
		FirstName: g.t.given[s.given],
		LastName:  surnames[s.surname],
		Document:  g.docs[s.docOff : int(s.docOff)+int(s.docLen)],
		Birthdate: g.t.dates[d : d+dateLen],
		Number:    int(s.number),
	}
}

// refill draws the next batchSize bets. Each bet consumes the source the
// same way whatever the batch size, so batching is invisible in the output.
func (g *Generator) refill() {
	t := g.t
	nDays := uint64(len(t.dates) / dateLen)
	g.digits = g.digits[:0]
	for i := range g.slots {
		s := &g.slots[i]

		// Given names: gender, then one or two distinct names.
		u := g.src.Uint64()
		gender := &t.gender[u&1]
		first := pick(g.src.Uint64(), gender.n)
		second := first
		if (u>>1)&1023 < twoNamesIn1024 {
			second = pick(g.src.Uint64(), gender.n-1)
			if second >= first {
				second++
			}
		}
		s.given = uint32(gender.base + first*gender.n + second)
		s.surname = uint16(pick(g.src.Uint64(), len(surnames)))

		day := uniform(g.src.Uint64(), nDays)
		s.day = uint16(day)
		doc := int64(t.docBase[day]) + int64(uniform(g.src.Uint64(), 2*docJitter+1)) - docJitter
		s.docOff = uint16(len(g.digits))
		g.digits = appendDoc(g.digits, uint32(doc))
		s.docLen = uint8(len(g.digits) - int(s.docOff))

		if g.src.Uint64()>>11 < g.winThreshold {
			s.number = lottery.WinningNumber
		} else {
			s.number = uint16(uniform(g.src.Uint64(), lottery.MaxNumber+1))
		}
	}
	g.docs = string(g.digits) // the batch's one allocation
	g.pos = 0
}

const digitPairs = "00010203040506070809" +
	"10111213141516171819" +
	"20212223242526272829" +
	"30313233343536373839" +
	"40414243444546474849" +
	"50515253545556575859" +
	"60616263646566676869" +
	"70717273747576777879" +
	"80818283848586878889" +
	"90919293949596979899"

// appendDoc appends v in decimal (v < 10^8, as every DNI here is).
func appendDoc(dst []byte, v uint32) []byte {
	var buf [maxDocLen]byte
	i := len(buf)
	for v >= 100 {
		p := v % 100 * 2
		v /= 100
		i -= 2
		buf[i], buf[i+1] = digitPairs[p], digitPairs[p+1]
	}
	if v >= 10 {
		i -= 2
		buf[i], buf[i+1] = digitPairs[v*2], digitPairs[v*2+1]
	} else {
		i--
		buf[i] = byte('0' + v)
	}
	return append(dst, buf[i:]...)
}

// uniform maps a 64-bit draw to [0, n) (Lemire's multiply-shift; the bias,
// below n/2^64, is negligible for the small n used here).
func uniform(u, n uint64) uint64 {
	hi, _ := bits.Mul64(u, n)
	return hi
}

// pick maps a draw to an index of a list of n entries ordered from common to
// rare: half the time uniformly, half the time from the product of two
// uniforms, which favours the front. With ~100 entries the first one gets
// ~3% of the picks and the last ~0.5%.
func pick(u uint64, n int) int {
	a := u >> 32
	if u&1 == 0 {
		return int(a * uint64(n) >> 32)
	}
	b := uint64(uint32(u) >> 1)
	y := a * b >> 31 // < 2^32
	return int(y * uint64(n) >> 32)
}

func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// AppendCSV appends b as one dataset line, "nombre,apellido,documento,
// nacimiento,numero\r\n", to dst. It does not validate b: pass bets that
// satisfy lottery.Rules (every generated bet does) or the line may not parse.
func AppendCSV(dst []byte, b lottery.Bet) []byte { return betfile.AppendLine(dst, b) }

// Write writes the first n bets of the sequence of opts to w in the dataset
// format, buffered, and returns how many of them play lottery.WinningNumber.
func Write(w io.Writer, opts Options, n int) (winners int, err error) {
	if n < 0 {
		return 0, fmt.Errorf("datagen: negative bet count %d", n)
	}
	g := New(opts)
	bw := bufio.NewWriterSize(w, 64<<10)
	for range n {
		b := g.Next()
		if b.Wins() {
			winners++
		}
		if _, err := bw.Write(AppendCSV(bw.AvailableBuffer(), b)); err != nil {
			return winners, err
		}
	}
	return winners, bw.Flush()
}

// WriteFile writes the first n bets of opts to path (mode 0644) like Write.
// The file appears complete or not at all: it is written under a temporary
// name in the same directory and renamed. The directory must exist.
func WriteFile(path string, opts Options, n int) (winners int, err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return 0, err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if winners, err = Write(f, opts, n); err != nil {
		return 0, err
	}
	if err = f.Chmod(0o644); err != nil {
		return 0, err
	}
	if err = f.Close(); err != nil {
		return 0, err
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return 0, err
	}
	return winners, nil
}
