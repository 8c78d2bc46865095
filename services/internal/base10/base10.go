// Package base10 appends integers in base 10, the small ones that fill
// every bet line and bets-file row (agency ids, bet numbers) without
// strconv's general path.
package base10

import "strconv"

// Append appends n in decimal, as strconv.AppendInt(dst, int64(n), 10)
// does: 0 to 9,999 digit by digit, the rest by strconv.
func Append(dst []byte, n int) []byte {
	switch {
	case n < 0 || n >= 10000:
		return strconv.AppendInt(dst, int64(n), 10)
	case n < 10:
		return append(dst, byte('0'+n))
	case n < 100:
		return append(dst, byte('0'+n/10), byte('0'+n%10))
	case n < 1000:
		return append(dst, byte('0'+n/100), byte('0'+n/10%10), byte('0'+n%10))
	}
	return append(dst, byte('0'+n/1000), byte('0'+n/100%10), byte('0'+n/10%10), byte('0'+n%10))
}
