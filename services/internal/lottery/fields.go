package lottery

import (
	"fmt"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits of a bet's fields (docs/PROTOCOL.md, "Batch", says why each).
const (
	// MaxNameBytes bounds a first or last name, in bytes of UTF-8. The
	// official data's longest first name is 23 bytes ("Milagros De Los
	// Angeles") and its longest last name 10; 100 bytes is four times
	// that, room for several given names or a compound surname with
	// accents (2 bytes each), and keeps a bet line far below a frame.
	MaxNameBytes = 100
	// MaxDocumentDigits bounds a DNI: every one of the official data has
	// 8 digits, and Argentina's numbering reaches 8 digits; 9 leaves room
	// for the next range while refusing what is not a DNI.
	MaxDocumentDigits = 9
	// MaxNumber is the largest number a bet may play.
	MaxNumber = 9999
	// MaxNumberDigits bounds how a number is written: a ticket number has
	// four digits, so "0042" is 42 but "00007574" is refused.
	MaxNumberDigits = 4
)

// EarliestBirthdate is the earliest birthdate a bet may carry.
const EarliestBirthdate Date = 1900_01_01

// Field names, as errors and [FieldError].Field say them.
const (
	FieldFirstName = "first name"
	FieldLastName  = "last name"
	FieldDocument  = "document"
	FieldBirthdate = "birthdate"
	FieldNumber    = "number"
)

// FieldError says which field of a bet is wrong and how, describing the
// field without quoting it: "first name contains ',' (byte 7)". Byte
// positions count from 1.
type FieldError struct {
	Field   string // one of the Field* names
	Problem string // what is wrong, e.g. "contains ',' (byte 7)"
}

func (e *FieldError) Error() string { return e.Field + " " + e.Problem }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Problem: fmt.Sprintf(format, args...)}
}

// Classes of a name's bytes, for ValidateName's fast path.
const (
	nameOK      = iota // printable ASCII other than the separators
	nameRefused        // a separator or a control character
	nameUTF8           // part of a multi-byte character: decode it
)

// nameByte classifies every byte value; it is built once and never
// changed.
var nameByte = func() (t [256]uint8) {
	for c := range 256 {
		switch {
		case c >= utf8.RuneSelf:
			t[c] = nameUTF8
		case c < 0x20 || c == 0x7f || c == ';' || c == ',':
			t[c] = nameRefused
		}
	}
	return t
}()

// invisible says whether r is a format character (Unicode's Cf) that a
// name may not hold: it shows nothing, or turns the text around it (a
// zero-width space, a soft hyphen, a byte-order mark, the bidirectional
// overrides and isolates, the tags), so two names that print alike could
// differ, and a name could reorder the log line or the winners' list it is
// shown in. ZERO WIDTH NON-JOINER and ZERO WIDTH JOINER (U+200C, U+200D)
// are allowed: Persian and the Indic scripts write ordinary names with
// them.
func invisible(r rune) bool {
	return r != '\u200c' && r != '\u200d' && unicode.Is(unicode.Cf, r)
}

// ValidateName checks a first or last name (what names the field in the
// error): non-empty, at most MaxNameBytes bytes of valid UTF-8, with no
// control character (C0, DEL, C1; so no NUL, TAB, CR, LF or ESC), no line
// or paragraph separator (U+2028, U+2029), no invisible format character
// (see invisible), and neither field separator of the wire protocol (';')
// or the dataset files (',').
func ValidateName[T ~string | ~[]byte](what string, s T) error {
	if len(s) == 0 {
		return &FieldError{Field: what, Problem: "is empty"}
	}
	if len(s) > MaxNameBytes {
		return fieldErr(what, "is %d bytes, at most %d", len(s), MaxNameBytes)
	}
	// One table lookup a byte skips what is plainly fine (printable ASCII
	// other than the separators); only the rest is looked at closely, and
	// the scan resumes after each multi-byte character.
	for i := 0; i < len(s); {
		c := s[i]
		switch nameByte[c] {
		case nameOK:
			i++
			continue
		case nameRefused:
			if c == ';' || c == ',' {
				return fieldErr(what, "contains '%c' (byte %d)", c, i+1)
			}
			return fieldErr(what, "contains control character %U (byte %d)", c, i+1)
		}
		// Two-byte characters (the accented Latin letters of most names)
		// are decoded here; C1 controls are U+0080..U+009F, i.e. C2 80..9F.
		if c >= 0xc2 && c <= 0xdf && i+1 < len(s) && s[i+1]&0xc0 == 0x80 {
			if c == 0xc2 && s[i+1] <= 0x9f {
				return fieldErr(what, "contains control character %U (byte %d)", rune(s[i+1]), i+1)
			}
			// The two-byte format characters: U+00AD and a few of
			// Arabic and Syriac, whose lead bytes are these.
			if c == 0xc2 || c == 0xd8 || c == 0xdb || c == 0xdc {
				if r := rune(c&0x1f)<<6 | rune(s[i+1]&0x3f); invisible(r) {
					return fieldErr(what, "contains invisible format character %U (byte %d)", r, i+1)
				}
			}
			i += 2
			continue
		}
		// The conversion of at most 4 bytes is not kept, so it does not
		// allocate; for a string it is free.
		r, size := utf8.DecodeRuneInString(string(s[i:min(i+utf8.UTFMax, len(s))]))
		switch {
		case r == utf8.RuneError && size == 1:
			return fieldErr(what, "is not valid UTF-8 (byte %d)", i+1)
		case r <= 0x9f: // C1: U+0080..U+009F
			return fieldErr(what, "contains control character %U (byte %d)", r, i+1)
		case r == '\u2028':
			return fieldErr(what, "contains line separator U+2028 (byte %d)", i+1)
		case r == '\u2029':
			return fieldErr(what, "contains paragraph separator U+2029 (byte %d)", i+1)
		case invisible(r):
			return fieldErr(what, "contains invisible format character %U (byte %d)", r, i+1)
		}
		i += size
	}
	return nil
}

// ValidateDocument checks a DNI: 1 to MaxDocumentDigits decimal digits,
// the first not 0 (a DNI is a number; "0123" is not how one is written,
// and "0" is nobody's).
func ValidateDocument[T ~string | ~[]byte](s T) error {
	if len(s) == 0 {
		return &FieldError{Field: FieldDocument, Problem: "is empty"}
	}
	if i := nonDigit(s); i >= 0 {
		return fieldErr(FieldDocument, "has a character that is not a digit 0-9 (byte %d)", i+1)
	}
	if len(s) > MaxDocumentDigits {
		return fieldErr(FieldDocument, "has %d digits, at most %d", len(s), MaxDocumentDigits)
	}
	if s[0] == '0' {
		return &FieldError{Field: FieldDocument, Problem: "starts with 0: a DNI has no leading zeros"}
	}
	return nil
}

// ParseNumber parses the number a bet plays: 1 to MaxNumberDigits decimal
// digits (leading zeros allowed within them), 0..MaxNumber.
func ParseNumber[T ~string | ~[]byte](s T) (int, error) {
	if len(s) == 0 {
		return 0, &FieldError{Field: FieldNumber, Problem: "is empty"}
	}
	if i := nonDigit(s); i >= 0 {
		return 0, fieldErr(FieldNumber, "has a character that is not a digit 0-9 (byte %d)", i+1)
	}
	if len(s) > MaxNumberDigits {
		return 0, fieldErr(FieldNumber, "has %d digits, at most %d (0 to %d)", len(s), MaxNumberDigits, MaxNumber)
	}
	n, _ := atoi(s, MaxNumberDigits)
	return n, nil
}

// Date is a calendar date written as the number yyyymmdd (1999-03-17 is
// 19990317), so dates compare as integers do.
type Date int32

// MakeDate returns the Date of year, month and day, which it does not
// check.
func MakeDate(year int, month time.Month, day int) Date {
	return Date(year*10000 + int(month)*100 + day)
}

// DateOf returns the date t falls on in t's location.
func DateOf(t time.Time) Date {
	y, m, d := t.Date()
	return MakeDate(y, m, d)
}

// Year, Month and Day are the date's parts.
func (d Date) Year() int         { return int(d) / 10000 }
func (d Date) Month() time.Month { return time.Month(int(d) / 100 % 100) }
func (d Date) Day() int          { return int(d) % 100 }

// String writes the date as YYYY-MM-DD.
func (d Date) String() string {
	return fmt.Sprintf("%04d-%02d-%02d", d.Year(), int(d.Month()), d.Day())
}

// ParseDate parses a YYYY-MM-DD birthdate that is a real calendar date
// (0001-01-01 to 9999-12-31; 1999-02-30 is refused). It does not check the
// date against today: see [Rules.CheckBirthdate].
func ParseDate[T ~string | ~[]byte](s T) (Date, error) {
	if len(s) != 10 || s[4] != '-' || s[7] != '-' {
		return 0, &FieldError{Field: FieldBirthdate, Problem: "is not a date written YYYY-MM-DD"}
	}
	y, ok1 := atoi(s[0:4], 4)
	m, ok2 := atoi(s[5:7], 2)
	d, ok3 := atoi(s[8:10], 2)
	if !ok1 || !ok2 || !ok3 {
		return 0, &FieldError{Field: FieldBirthdate, Problem: "is not a date written YYYY-MM-DD"}
	}
	if y < 1 || m < 1 || m > 12 || d < 1 || d > daysIn(m, y) {
		return 0, &FieldError{Field: FieldBirthdate, Problem: "is not a real date"}
	}
	return MakeDate(y, time.Month(m), d), nil
}

func daysIn(m, y int) int {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// nonDigit returns the index of the first byte of s that is not an ASCII
// digit, or -1.
func nonDigit[T ~string | ~[]byte](s T) int {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return i
		}
	}
	return -1
}

// atoi parses 1..maxDigits decimal digits without allocating.
func atoi[T ~string | ~[]byte](s T, maxDigits int) (int, bool) {
	if len(s) == 0 || len(s) > maxDigits {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}
