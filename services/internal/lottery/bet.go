// Package lottery holds the rules of the Lotería Nacional: what a bet is,
// when it is valid, the winning number and the draw.
package lottery

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// WinningNumber is the number that wins the draw.
const WinningNumber = 7574

// MaxNumber is the largest number a bet may play.
const MaxNumber = 9999

// MaxDocumentDigits bounds a DNI so it always fits in a uint64.
const MaxDocumentDigits = 18

// Bet is one bet as an agency holds it.
type Bet struct {
	Agency    int
	FirstName string
	LastName  string
	Document  string // decimal digits (the DNI)
	Birthdate string // YYYY-MM-DD
	Number    int    // 0..MaxNumber
}

// Wins reports whether the bet plays the winning number.
func (b Bet) Wins() bool { return Wins(b.Number) }

// Wins reports whether a bet playing number wins the draw: the one rule of
// the draw, for callers that hold a bet's fields rather than a Bet.
func Wins(number int) bool { return number == WinningNumber }

// Validate checks every field of the bet (not the agency, which depends on
// how many agencies the central expects).
func (b Bet) Validate() error {
	if err := validateFields(b.FirstName, b.LastName, b.Document, b.Birthdate); err != nil {
		return err
	}
	if b.Number < 0 || b.Number > MaxNumber {
		return fmt.Errorf("number %d out of range 0..%d", b.Number, MaxNumber)
	}
	return nil
}

// ValidateFields checks a bet given as its text fields, as they come off
// the wire, and returns the number it plays. It does not allocate unless
// a field is wrong.
func ValidateFields(first, last, document, birthdate, number []byte) (int, error) {
	if err := validateFields(first, last, document, birthdate); err != nil {
		return 0, err
	}
	return ParseNumber(number)
}

func validateFields[T ~string | ~[]byte](first, last, document, birthdate T) error {
	if err := ValidateName("first name", first); err != nil {
		return err
	}
	if err := ValidateName("last name", last); err != nil {
		return err
	}
	if err := ValidateDocument(document); err != nil {
		return err
	}
	return ValidateDate(birthdate)
}

// ValidateName checks a first or last name: non-empty valid UTF-8 with no
// field or line separators of either the wire protocol (';', '\n') or the
// dataset files (',', '\r').
func ValidateName[T ~string | ~[]byte](what string, s T) error {
	if len(s) == 0 {
		return fmt.Errorf("empty %s", what)
	}
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case ';', '\n', '\r', ',':
			return fmt.Errorf("%s %q contains %q", what, string(s), s[i])
		}
	}
	if !utf8.Valid([]byte(s)) {
		return fmt.Errorf("%s is not valid UTF-8", what)
	}
	return nil
}

// ValidateDocument checks a DNI: 1 to MaxDocumentDigits decimal digits.
func ValidateDocument[T ~string | ~[]byte](s T) error {
	if len(s) == 0 {
		return errors.New("empty document")
	}
	if len(s) > MaxDocumentDigits {
		return fmt.Errorf("document %q longer than %d digits", string(s), MaxDocumentDigits)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return fmt.Errorf("document %q is not decimal", string(s))
		}
	}
	return nil
}

// ParseNumber parses the number a bet plays: decimal digits, 0..MaxNumber.
func ParseNumber[T ~string | ~[]byte](s T) (int, error) {
	n, ok := atoi(s, 4)
	if !ok || n > MaxNumber {
		return 0, fmt.Errorf("number %q is not an integer in 0..%d", string(s), MaxNumber)
	}
	return n, nil
}

// ValidateDate checks a YYYY-MM-DD calendar date that really exists.
func ValidateDate[T ~string | ~[]byte](s T) error {
	if len(s) != 10 || s[4] != '-' || s[7] != '-' {
		return fmt.Errorf("bad date %q: want YYYY-MM-DD", string(s))
	}
	y, ok1 := atoi(s[0:4], 4)
	m, ok2 := atoi(s[5:7], 2)
	d, ok3 := atoi(s[8:10], 2)
	if !ok1 || !ok2 || !ok3 || y < 1 || m < 1 || m > 12 || d < 1 || d > daysIn(m, y) {
		return fmt.Errorf("bad date %q", string(s))
	}
	return nil
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
