// Package betfile reads an agency's bets file, the dataset format: one bet
// per line, `nombre,apellido,documento,nacimiento,numero`, no header, LF or
// CRLF line ends, UTF-8. It streams: memory does not grow with the file.
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

	"github.com/loteria/loteria/services/internal/lottery"
)

// MaxLine bounds one line of a bets file (the reader's buffer).
const MaxLine = 64 << 10

// Reader reads bets one at a time.
type Reader struct {
	name   string
	agency int
	br     *bufio.Reader
	line   int
}

// NewReader reads bets of agency from r; name is used in error messages.
func NewReader(r io.Reader, name string, agency int) *Reader {
	return &Reader{name: name, agency: agency, br: bufio.NewReaderSize(r, MaxLine)}
}

// Line is the number of the last line read.
func (r *Reader) Line() int { return r.line }

// Next returns the next bet, io.EOF after the last one, or an error naming
// the file and line of a malformed bet. Blank lines are skipped.
func (r *Reader) Next() (lottery.Bet, error) {
	for {
		raw, err := r.br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			r.line++
			return lottery.Bet{}, fmt.Errorf("%s:%d: line longer than %d bytes", r.name, r.line, r.br.Size())
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return lottery.Bet{}, fmt.Errorf("read %s: %w", r.name, err)
		}
		if len(raw) == 0 && err != nil {
			return lottery.Bet{}, io.EOF
		}
		r.line++
		raw = bytes.TrimSuffix(raw, []byte{'\n'})
		raw = bytes.TrimSuffix(raw, []byte{'\r'})
		if len(raw) == 0 {
			continue
		}
		b, perr := parseLine(string(raw), r.agency)
		if perr != nil {
			return lottery.Bet{}, fmt.Errorf("%s:%d: %w", r.name, r.line, perr)
		}
		return b, nil
	}
}

func parseLine(s string, agency int) (lottery.Bet, error) {
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
	if err := b.Validate(); err != nil {
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
	for {
		raw, err := br.ReadSlice('\n')
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
