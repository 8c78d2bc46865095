// Package lottery holds the rules of the Lotería Nacional: what a bet is,
// when it is valid, the winning number and the draw.
//
// Validation never quotes a bet's fields: names, documents and birthdates
// are personal data, so an error describes what is wrong and where
// ("first name contains ',' (byte 7)", "document has 10 digits, at most
// 9") and can go into logs, acks and spans as it is.
package lottery

import (
	"fmt"
	"time"
)

// WinningNumber is the number that wins the draw.
const WinningNumber = 7574

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

// Rules are the validation rules on one day: the field limits of this
// package and Today, the latest birthdate a bet may carry. A Rules is a
// small value without pointers: build it with [NewRules] once per batch
// (it costs a clock read and allocates nothing) or once a day, and pass it
// by value. Every bet of a batch should be judged by the same Rules, so a
// batch that arrives around midnight is judged by one day, not two.
//
// The zero Rules refuses every bet (it has no today).
type Rules struct {
	today Date
}

// NewRules returns the rules on the day now falls on in UTC. Using UTC
// makes every central agree on the day whatever its zone; for Argentina
// (UTC-3) the UTC day is never earlier than the local one, so nobody born
// today, local time, is refused as born in the future.
func NewRules(now time.Time) Rules {
	return Rules{today: DateOf(now.UTC())}
}

// Today is the latest birthdate the rules accept.
func (r Rules) Today() Date { return r.today }

// ValidateFields checks a bet given as its text fields, as they come off
// the wire, and returns the number it plays. It does not allocate unless
// a field is wrong. The error is a *[FieldError].
func (r Rules) ValidateFields(first, last, document, birthdate, number []byte) (int, error) {
	if err := validateFields(r, first, last, document, birthdate); err != nil {
		return 0, err
	}
	return ParseNumber(number)
}

// Validate checks every field of the bet (not the agency, which depends on
// how many agencies the central expects). The error is a *[FieldError].
func (r Rules) Validate(b Bet) error {
	if err := validateFields(r, b.FirstName, b.LastName, b.Document, b.Birthdate); err != nil {
		return err
	}
	if b.Number < 0 || b.Number > MaxNumber {
		// The number is no personal data, and an int cannot carry any.
		return &FieldError{Field: FieldNumber, Problem: fmt.Sprintf("%d is out of range 0..%d", b.Number, MaxNumber)}
	}
	return nil
}

// CheckBirthdate checks that a real date d lies between
// [EarliestBirthdate] and Today.
func (r Rules) CheckBirthdate(d Date) error {
	switch {
	case d < EarliestBirthdate:
		return &FieldError{Field: FieldBirthdate, Problem: "is before " + EarliestBirthdate.String()}
	case d > r.today:
		if r.today == 0 {
			return &FieldError{Field: FieldBirthdate, Problem: "cannot be checked: the validation rules have no today (build them with lottery.NewRules)"}
		}
		return &FieldError{Field: FieldBirthdate, Problem: "is after today (" + r.today.String() + ", UTC)"}
	}
	return nil
}

func validateFields[T ~string | ~[]byte](r Rules, first, last, document, birthdate T) error {
	if err := ValidateName(FieldFirstName, first); err != nil {
		return err
	}
	if err := ValidateName(FieldLastName, last); err != nil {
		return err
	}
	if err := ValidateDocument(document); err != nil {
		return err
	}
	d, err := ParseDate(birthdate)
	if err != nil {
		return err
	}
	return r.CheckBirthdate(d)
}

// Validate checks every field of the bet with the rules of the day the
// clock says.
//
// Deprecated: it reads the clock on every call; use [Rules.Validate] with
// a Rules built by [NewRules].
func (b Bet) Validate() error { return NewRules(time.Now()).Validate(b) }

// ValidateFields checks a bet's wire fields with the rules of the day the
// clock says.
//
// Deprecated: it reads the clock on every call (a quarter of the cost of
// validating a bet); use [Rules.ValidateFields] with a Rules built by
// [NewRules] once per batch.
func ValidateFields(first, last, document, birthdate, number []byte) (int, error) {
	return NewRules(time.Now()).ValidateFields(first, last, document, birthdate, number)
}
