package store

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// ScanRows reads bets rows as AppendRow writes them. Names never hold a
// comma or newline (validation refuses them), so a row is one line whose
// first field is the agency and whose last three are document, birthdate
// and number.
func ScanRows(r io.Reader, fn func(agency int, document []byte, number int) error) error {
	br := bufio.NewReaderSize(r, 256<<10)
	for line := 1; ; line++ {
		row, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return fmt.Errorf("bets file row %d is longer than %d bytes", line, br.Size())
		}
		if len(row) == 0 && errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read the bets file: %w", err)
		}
		agency, doc, number, ok := splitRow(row)
		if !ok {
			return fmt.Errorf("bets file row %d is not agency,first_name,last_name,document,birthdate,number", line)
		}
		if err := fn(agency, doc, number); err != nil {
			return err
		}
	}
}

func splitRow(row []byte) (agency int, doc []byte, number int, ok bool) {
	n := len(row)
	if n > 0 && row[n-1] == '\n' {
		n--
	}
	if n > 0 && row[n-1] == '\r' {
		n--
	}
	row = row[:n]
	var f [3][]byte // number, birthdate, document, from the end
	end := len(row)
	for i := 0; i < 3; i++ {
		j := lastComma(row[:end])
		if j < 0 {
			return 0, nil, 0, false
		}
		f[i] = row[j+1 : end]
		end = j
	}
	c := firstComma(row[:end])
	if c < 0 {
		return 0, nil, 0, false
	}
	a, err := strconv.Atoi(string(row[:c]))
	if err != nil {
		return 0, nil, 0, false
	}
	num, err := strconv.Atoi(string(f[0]))
	if err != nil {
		return 0, nil, 0, false
	}
	return a, f[2], num, true
}

func lastComma(b []byte) int {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == ',' {
			return i
		}
	}
	return -1
}

func firstComma(b []byte) int {
	for i, c := range b {
		if c == ',' {
			return i
		}
	}
	return -1
}
