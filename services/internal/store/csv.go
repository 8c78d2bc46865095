package store

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"strconv"

	"github.com/loteria/loteria/services/internal/base10"
	"github.com/loteria/loteria/services/internal/ledger"
)

// AppendRow appends one bet as a row of the seed's bets file:
// agency,first_name,last_name,document,birthdate,number and a newline, with
// RFC 4180 quoting where a field needs it (as Python's csv.QUOTE_MINIMAL
// does), so the seed's own load_bets reads the file back.
//
// Almost every row needs no quotes, so the row is written plain first and
// then checked as a whole, a word at a time: if it holds the five commas
// that separate its fields and no '"', CR or LF, it is what quoting would
// have written. Otherwise it is written again field by field.
func AppendRow[T ~string | ~[]byte](dst []byte, agency int, first, last, document, birthdate T, number int) []byte {
	start := len(dst)
	dst = appendPlain(dst, agency, first, last, document, birthdate, number)
	if plainRow(dst[start:], 5) {
		return append(dst, '\n')
	}
	dst = dst[:start]
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

// appendBetRow appends a bet that passed lottery validation (what a
// ledger.Bet is) as AppendRow would, without AppendRow's check of the
// whole row. Validation leaves '"' as the only byte that can make one of
// its fields need quotes: a name may hold no ',' and no control character
// (CR and LF among them), a document only digits, a birthdate only
// YYYY-MM-DD (TestValidationLeavesOnlyQuotesToQuote pins each). So only the
// names are looked at, with IndexByte; a name with a '"' takes AppendRow.
// The check it skips was 16% of the central's CPU at 4.5 M bets/s.
func appendBetRow(dst []byte, agency int, b ledger.Bet) []byte {
	if bytes.IndexByte(b.FirstName, '"') >= 0 || bytes.IndexByte(b.LastName, '"') >= 0 {
		return AppendRow(dst, agency, b.FirstName, b.LastName, b.Document, b.Birthdate, b.Number)
	}
	return append(appendPlain(dst, agency, b.FirstName, b.LastName, b.Document, b.Birthdate, b.Number), '\n')
}

// appendPlain appends a row's fields between commas, unquoted, without
// its newline.
func appendPlain[T ~string | ~[]byte](dst []byte, agency int, first, last, document, birthdate T, number int) []byte {
	dst = base10.Append(dst, agency)
	dst = append(dst, ',')
	dst = append(dst, first...)
	dst = append(dst, ',')
	dst = append(dst, last...)
	dst = append(dst, ',')
	dst = append(dst, document...)
	dst = append(dst, ',')
	dst = append(dst, birthdate...)
	dst = append(dst, ',')
	return base10.Append(dst, number)
}

// plainRow reports whether row holds exactly commas commas and no '"', CR
// or LF, eight bytes at a time (the tail padded with a byte that is none
// of them).
func plainRow(row []byte, commas int) bool {
	n, i := 0, 0
	for ; i+8 <= len(row); i += 8 {
		x := binary.LittleEndian.Uint64(row[i:])
		if zeroBytes(x^(lsb*'"'))|zeroBytes(x^(lsb*'\r'))|zeroBytes(x^(lsb*'\n')) != 0 {
			return false
		}
		n += bits.OnesCount64(zeroBytes(x ^ (lsb * ',')))
	}
	if i < len(row) {
		var w [8]byte
		copy(w[copy(w[:], row[i:]):], "aaaaaaaa")
		x := binary.LittleEndian.Uint64(w[:])
		if zeroBytes(x^(lsb*'"'))|zeroBytes(x^(lsb*'\r'))|zeroBytes(x^(lsb*'\n')) != 0 {
			return false
		}
		n += bits.OnesCount64(zeroBytes(x ^ (lsb * ',')))
	}
	return n == commas
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
	lsb  = 0x0101010101010101
	msb  = 0x8080808080808080
	low7 = 0x7f7f7f7f7f7f7f7f
)

func hasZero(v uint64) uint64 { return (v - lsb) &^ v & msb }

// zeroBytes has the top bit of exactly the bytes of v that are zero (no
// borrow crosses from one byte to the next, unlike hasZero), so its bits
// can be counted.
func zeroBytes(v uint64) uint64 { return ^((v&low7 + low7) | v | low7) }

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
