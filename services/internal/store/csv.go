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

func needsQuotes[T ~string | ~[]byte](f T) bool {
	for i := 0; i < len(f); i++ {
		if quoted[f[i]] {
			return true
		}
	}
	return false
}
