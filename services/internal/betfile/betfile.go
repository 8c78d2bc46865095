// Package betfile reads an agency's bets file, the dataset format: one bet
// per line, `nombre,apellido,documento,nacimiento,numero`, no header, LF or
// CRLF line ends, UTF-8 (a byte-order mark at the file's start is skipped).
// It streams: memory does not grow with the file,
// as long as callers do not keep the bets' strings (see [Reader]).
package betfile

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/loteria/loteria/services/internal/lottery"
)

// byteOrderMark is U+FEFF in UTF-8.
const byteOrderMark = "\ufeff"

// MaxLine bounds one line of a bets file (the reader's buffer).
const MaxLine = 64 << 10

// clockEvery is how many bets are judged by one reading of the clock: a
// file's bets are validated against the day, and reading the clock for
// each of them was a tenth of an agency's CPU.
const clockEvery = 1024

// maxEmptyReads is how many reads in a row may return no data and no
// error before the reader is given up on (io.ErrNoProgress), as bufio does.
const maxEmptyReads = 100

// Reader reads bets one at a time.
//
// It reads the file in blocks of up to [MaxLine] bytes and turns each
// block's whole lines into one string, so that a bet's fields are slices
// of it: one allocation per block, not one per bet. A bet returned keeps
// its block alive for as long as any of its strings is: a caller that
// keeps a field beyond the next bets (a winner's document, say) keeps a
// copy of it ([strings.Clone]).
type Reader struct {
	name   string
	agency int
	r      io.Reader
	buf    []byte // the block being read; buf[:n] holds a line's start not yet returned
	n      int
	text   string // whole lines read and not yet returned
	err    error  // the read error to return once text is used up
	broken error  // a line too long: returned by every later call
	line   int
	rules  lottery.Rules
	judged int // bets judged by rules since the clock was read
	now    func() time.Time
}

// NewReader reads bets of agency from r; name is used in error messages.
func NewReader(r io.Reader, name string, agency int) *Reader {
	return &Reader{name: name, agency: agency, r: r, buf: make([]byte, MaxLine), now: time.Now}
}

// Line is the number of the last line read.
func (r *Reader) Line() int { return r.line }

// Next returns the next bet, io.EOF after the last one, or an error naming
// the file and line of a malformed bet. Blank lines are skipped. After a
// read error or a line too long, every later call returns that error; after
// a malformed bet, Next goes on with the next line.
func (r *Reader) Next() (lottery.Bet, error) {
	for {
		if r.text == "" {
			if err := r.fill(); err != nil {
				return lottery.Bet{}, err
			}
		}
		raw := r.text
		if i := strings.IndexByte(raw, '\n'); i >= 0 {
			raw, r.text = raw[:i], raw[i+1:]
		} else {
			r.text = "" // the last line, without a newline
		}
		r.line++
		raw = strings.TrimSuffix(raw, "\r")
		if r.line == 1 {
			// A spreadsheet's "CSV UTF-8" starts with a byte-order mark:
			// it is the file's, not the first bet's.
			raw = strings.TrimPrefix(raw, byteOrderMark)
		}
		if raw == "" {
			continue
		}
		fresh := r.judged == 0
		if fresh {
			r.rules = lottery.NewRules(r.now())
		}
		r.judged = (r.judged + 1) % clockEvery
		b, perr := parseLine(raw, r.agency, r.rules)
		if perr != nil && !fresh {
			// The day may have changed since the clock was read (a
			// paced agency reads 1,024 bets in minutes): a bet is only
			// refused by today's rules.
			r.rules, r.judged = lottery.NewRules(r.now()), 1
			b, perr = parseLine(raw, r.agency, r.rules)
		}
		if perr != nil {
			return lottery.Bet{}, fmt.Errorf("%s:%d: %w", r.name, r.line, perr)
		}
		return b, nil
	}
}

// fill reads until r.text holds at least one line: the block's whole
// lines, or at the end of the file the last line without its newline. It
// returns io.EOF when the file holds nothing more.
func (r *Reader) fill() error {
	if r.broken != nil {
		return r.broken
	}
	for empty := 0; ; {
		if r.err != nil {
			if !errors.Is(r.err, io.EOF) {
				// A line cut by a failing read is no line: it is not
				// returned, so a truncated number cannot pass as a bet.
				return fmt.Errorf("read %s: %w", r.name, r.err)
			}
			if r.n > 0 { // the last line has no newline
				r.text, r.n = string(r.buf[:r.n]), 0
				return nil
			}
			return io.EOF
		}
		if r.n == len(r.buf) {
			r.line++
			r.broken = fmt.Errorf("%s:%d: line longer than %d bytes", r.name, r.line, len(r.buf))
			return r.broken
		}
		m, err := r.r.Read(r.buf[r.n:])
		if m < 0 || m > len(r.buf)-r.n {
			err = fmt.Errorf("its reader returned %d bytes for a buffer of %d", m, len(r.buf)-r.n)
			m = 0
		}
		switch {
		case m > 0:
			empty = 0
		case err == nil:
			// bufio's rule: a reader that keeps returning nothing and
			// no error is broken, not slow.
			if empty++; empty == maxEmptyReads {
				err = io.ErrNoProgress
			}
		}
		start := r.n
		r.n += m
		r.err = err
		if i := bytes.LastIndexByte(r.buf[start:r.n], '\n'); i >= 0 {
			end := start + i + 1
			r.text = string(r.buf[:end])
			r.n = copy(r.buf, r.buf[end:r.n])
			return nil
		}
	}
}

func parseLine(s string, agency int, rules lottery.Rules) (lottery.Bet, error) {
	var f [5]string
	rest := s
	for i := 0; i < 4; i++ {
		j := strings.IndexByte(rest, ',')
		if j < 0 {
			return lottery.Bet{}, fmt.Errorf("%d fields, want 5: nombre,apellido,documento,nacimiento,numero", i+1)
		}
		f[i], rest = rest[:j], rest[j+1:]
	}
	if strings.IndexByte(rest, ',') >= 0 {
		return lottery.Bet{}, errors.New("more than 5 fields, want nombre,apellido,documento,nacimiento,numero")
	}
	f[4] = rest
	n, err := lottery.ParseNumber(f[4])
	if err != nil {
		return lottery.Bet{}, err
	}
	b := lottery.Bet{Agency: agency, FirstName: f[0], LastName: f[1], Document: f[2], Birthdate: f[3], Number: n}
	if err := rules.Validate(b); err != nil {
		return lottery.Bet{}, err
	}
	return b, nil
}

// File is a bets file opened for reading.
type File struct {
	*Reader
	f *os.File
}

// Open opens the bets file at path for agency.
func Open(path string, agency int) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open bets file: %w", err)
	}
	return &File{Reader: NewReader(f, path, agency), f: f}, nil
}

// Close closes the file.
func (f *File) Close() error { return f.f.Close() }

// CountLines counts the non-blank lines of the file at path without parsing
// them, so progress can be shown against a total.
func CountLines(path string) (int, error) {
	return CountLinesTee(path, nil)
}

// CountLinesTee is CountLines that also writes every byte of the file to
// w (a hash, say), so one pass over the file does both.
func CountLinesTee(path string, w io.Writer) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("open bets file: %w", err)
	}
	defer f.Close()
	var r io.Reader = f
	if w != nil {
		r = io.TeeReader(f, w)
	}
	br := bufio.NewReaderSize(r, 64<<10)
	n := 0
	for first := true; ; first = false {
		raw, err := br.ReadSlice('\n')
		if first {
			// As Reader.Next: a line holding only the byte-order mark is
			// blank, not a bet (helper-28: it made the count one more
			// than the bets, and round 2 met a gap).
			raw = bytes.TrimPrefix(raw, []byte(byteOrderMark))
		}
		if len(bytes.TrimRight(raw, "\r\n")) > 0 {
			n++
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = br.ReadSlice('\n')
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return n, nil
			}
			return n, fmt.Errorf("read %s: %w", path, err)
		}
	}
}

// AppendLine appends b as a line of a bets file, CRLF-terminated like the
// official data.
func AppendLine(dst []byte, b lottery.Bet) []byte {
	dst = append(dst, b.FirstName...)
	dst = append(dst, ',')
	dst = append(dst, b.LastName...)
	dst = append(dst, ',')
	dst = append(dst, b.Document...)
	dst = append(dst, ',')
	dst = append(dst, b.Birthdate...)
	dst = append(dst, ',')
	dst = strconv.AppendInt(dst, int64(b.Number), 10)
	return append(dst, '\r', '\n')
}
