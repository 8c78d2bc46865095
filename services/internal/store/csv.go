package store

import "strconv"

// AppendRow appends one bet as a row of the seed's bets file:
// agency,first_name,last_name,document,birthdate,number and a newline, with
// RFC 4180 quoting where a field needs it (as Python's csv.QUOTE_MINIMAL
// does), so the seed's own load_bets reads the file back.
func AppendRow[T ~string | ~[]byte](dst []byte, agency int, first, last, document, birthdate T, number int) []byte {
	dst = strconv.AppendInt(dst, int64(agency), 10)
	dst = append(dst, ',')
	dst = appendField(dst, first)
	dst = append(dst, ',')
	dst = appendField(dst, last)
	dst = append(dst, ',')
	dst = appendField(dst, document)
	dst = append(dst, ',')
	dst = appendField(dst, birthdate)
	dst = append(dst, ',')
	dst = strconv.AppendInt(dst, int64(number), 10)
	return append(dst, '\n')
}

func appendField[T ~string | ~[]byte](dst []byte, f T) []byte {
	if !needsQuotes(f) {
		return append(dst, f...)
	}
	dst = append(dst, '"')
	for i := 0; i < len(f); i++ {
		if f[i] == '"' {
			dst = append(dst, '"')
		}
		dst = append(dst, f[i])
	}
	return append(dst, '"')
}

// quoted marks the bytes that make a field need quotes; built once and
// never changed.
var quoted = func() (t [256]bool) {
	for _, c := range []byte{',', '"', '\r', '\n'} {
		t[c] = true
	}
	return t
}()

// SWAR constants: a byte of x equal to c makes hasByte(x, c) non-zero.
const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

func hasZero(v uint64) uint64 { return (v - lsb) &^ v & msb }

// needsQuotes reports whether f holds ',', '"', CR or LF: eight bytes at
// a time (a field is a few words), the tail a byte at a time.
func needsQuotes[T ~string | ~[]byte](f T) bool {
	i := 0
	for ; i+8 <= len(f); i += 8 {
		x := uint64(f[i]) | uint64(f[i+1])<<8 | uint64(f[i+2])<<16 | uint64(f[i+3])<<24 |
			uint64(f[i+4])<<32 | uint64(f[i+5])<<40 | uint64(f[i+6])<<48 | uint64(f[i+7])<<56
		if hasZero(x^(lsb*','))|hasZero(x^(lsb*'"'))|hasZero(x^(lsb*'\r'))|hasZero(x^(lsb*'\n')) != 0 {
			return true
		}
	}
	for ; i < len(f); i++ {
		if quoted[f[i]] {
			return true
		}
	}
	return false
}
