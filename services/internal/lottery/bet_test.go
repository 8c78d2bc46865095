package lottery

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

// testToday is the day the tests' rules run on.
var testToday = time.Date(2026, 12, 1, 15, 4, 5, 0, time.UTC)

func TestValidateName(t *testing.T) {
	tests := []struct {
		in      string
		wantErr string // "" means valid
	}{
		{"Santiago Lionel", ""},
		{"Abadía", ""},
		{"Ñandú", ""},
		{"José María", ""},
		{"D'Alessandro", ""},
		{"Müller-Lüdenscheidt", ""},
		{"Maria De Los Milagros", ""},
		{"a", ""},
		{"\ufffd", ""},                 // a real U+FFFD is valid UTF-8
		{"\u00a0", ""},                 // NO-BREAK SPACE is not a control character
		{strings.Repeat("a", 100), ""}, // exactly the limit
		{strings.Repeat("é", 50), ""},  // 50 characters, 100 bytes
		{"", "first name is empty"},
		{strings.Repeat("a", 101), "first name is 101 bytes, at most 100"},
		{strings.Repeat("é", 51), "first name is 102 bytes, at most 100"},
		{strings.Repeat("x", 60000), "first name is 60000 bytes, at most 100"},
		{"Santia,go", "first name contains ',' (byte 7)"},
		{"a;b", "first name contains ';' (byte 2)"},
		{";", "first name contains ';' (byte 1)"},
		{"Ñandú;", "first name contains ';' (byte 8)"}, // bytes, not characters
		{"\x00", "first name contains control character U+0000 (byte 1)"},
		{"Ana\x00", "first name contains control character U+0000 (byte 4)"},
		{"Ana\tMaría", "first name contains control character U+0009 (byte 4)"},
		{"a\nb", "first name contains control character U+000A (byte 2)"},
		{"a\r", "first name contains control character U+000D (byte 2)"},
		{"\x1b[31mAna", "first name contains control character U+001B (byte 1)"},
		{"Ana\x7f", "first name contains control character U+007F (byte 4)"},
		{"Ana\u0085", "first name contains control character U+0085 (byte 4)"}, // NEL, C1
		{"\u0080", "first name contains control character U+0080 (byte 1)"},
		{"é\u009f", "first name contains control character U+009F (byte 3)"},
		{"Ana\u2028María", "first name contains line separator U+2028 (byte 4)"},
		{"Ana\u2029", "first name contains paragraph separator U+2029 (byte 4)"},
		{"Ana\u200bMaría", "first name contains invisible format character U+200B (byte 4)"}, // zero-width space
		{"\u202eanA", "first name contains invisible format character U+202E (byte 1)"},      // right-to-left override
		{"Ana\u2066", "first name contains invisible format character U+2066 (byte 4)"},      // left-to-right isolate
		{"\ufeffAna", "first name contains invisible format character U+FEFF (byte 1)"},      // byte-order mark
		{"Ana\u00adMaría", "first name contains invisible format character U+00AD (byte 4)"}, // soft hyphen
		{"é\u0600", "first name contains invisible format character U+0600 (byte 3)"},        // two bytes, Arabic
		{"a\U000e0041", "first name contains invisible format character U+E0041 (byte 2)"},   // tag, four bytes
		{"\u0645\u200c\u0647", ""}, // ZERO WIDTH NON-JOINER: some scripts write names with it
		{"\u0915\u094d\u200d", ""}, // ZERO WIDTH JOINER, likewise
		{"Ana\u00ad", "first name contains invisible format character U+00AD (byte 4)"},
		{"\xff", "first name is not valid UTF-8 (byte 1)"},
		{"Jos\xc3", "first name is not valid UTF-8 (byte 4)"},          // truncated
		{"\xc3\x28", "first name is not valid UTF-8 (byte 1)"},         // bad continuation
		{"a\xed\xa0\x80", "first name is not valid UTF-8 (byte 2)"},    // UTF-16 surrogate
		{"\xc0\xaf", "first name is not valid UTF-8 (byte 1)"},         // overlong '/'
		{"\xf4\x90\x80\x80", "first name is not valid UTF-8 (byte 1)"}, // above U+10FFFF
	}
	for _, tt := range tests {
		name := tt.in
		if len(name) > 30 {
			name = fmt.Sprintf("%d bytes", len(name))
		}
		t.Run(fmt.Sprintf("%q", name), func(t *testing.T) {
			errS := ValidateName(FieldFirstName, tt.in)
			errB := ValidateName(FieldFirstName, []byte(tt.in))
			for _, err := range []error{errS, errB} {
				if tt.wantErr == "" {
					if err != nil {
						t.Fatalf("refused: %v", err)
					}
					continue
				}
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				var fe *FieldError
				if !errors.As(err, &fe) || fe.Field != FieldFirstName {
					t.Fatalf("error %#v is not a *FieldError for the first name", err)
				}
			}
		})
	}
}

// TestValidateNameEveryRune puts every Unicode scalar value in a name and
// compares with an oracle built from package unicode: the refused ones
// are exactly the control characters (C0, DEL, C1), the format characters
// (Cf) but the two joiners, the two separators of Unicode and the two of
// the formats.
func TestValidateNameEveryRune(t *testing.T) {
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if !utf8.ValidRune(r) {
			continue // surrogates cannot be encoded; see TestValidateName
		}
		want := !unicode.IsControl(r) && !formatChar(r) && r != '\u2028' && r != '\u2029' && r != ';' && r != ','
		s := "a" + string(r) + "b"
		if err := ValidateName(FieldLastName, s); (err == nil) != want {
			t.Fatalf("ValidateName(%U inside) = %v, want ok=%v", r, err, want)
		}
	}
}

// formatChar is the oracle's format character: Unicode's Cf but ZERO WIDTH
// NON-JOINER and ZERO WIDTH JOINER.
func formatChar(r rune) bool { return unicode.Is(unicode.Cf, r) && r != '\u200c' && r != '\u200d' }

// FuzzValidateName compares ValidateName with an oracle written from the
// rules with packages strings, unicode and utf8.
func FuzzValidateName(f *testing.F) {
	for _, s := range []string{"Ana", "Ñandú", "a;b", "a\u2028", "\xff", "\u0085", "a\u200bb", "\u00ad", "\u200d", strings.Repeat("é", 50)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want := s != "" && len(s) <= MaxNameBytes && utf8.ValidString(s) &&
			!strings.ContainsFunc(s, func(r rune) bool {
				return unicode.IsControl(r) || formatChar(r) || r == '\u2028' || r == '\u2029' || r == ';' || r == ','
			})
		errS, errB := ValidateName(FieldFirstName, s), ValidateName(FieldFirstName, []byte(s))
		if (errS == nil) != want || (errB == nil) != want {
			t.Fatalf("ValidateName(%q) = %v, %v; want ok=%v", s, errS, errB, want)
		}
		if errS != nil && errS.Error() != errB.Error() {
			t.Fatalf("string and []byte disagree: %v, %v", errS, errB)
		}
	})
}

func TestValidateDocument(t *testing.T) {
	tests := []struct {
		in, wantErr string
	}{
		{"1", ""},
		{"9", ""},
		{"30904465", ""},
		{"123456789", ""},
		{"999999999", ""},
		{"100000000", ""},
		{"", "document is empty"},
		{"0", "document starts with 0: a DNI has no leading zeros"},
		{"0123", "document starts with 0: a DNI has no leading zeros"},
		{"000000001", "document starts with 0: a DNI has no leading zeros"},
		{"000000000000000000", "document has 18 digits, at most 9"},
		{"1234567890", "document has 10 digits, at most 9"},
		{strings.Repeat("9", 19), "document has 19 digits, at most 9"},
		{"12a", "document has a character that is not a digit 0-9 (byte 3)"},
		{" 12", "document has a character that is not a digit 0-9 (byte 1)"},
		{"12 ", "document has a character that is not a digit 0-9 (byte 3)"},
		{"-1", "document has a character that is not a digit 0-9 (byte 1)"},
		{"+1", "document has a character that is not a digit 0-9 (byte 1)"},
		{"1.5", "document has a character that is not a digit 0-9 (byte 2)"},
		{"１２", "document has a character that is not a digit 0-9 (byte 1)"}, // full-width digits
		{"30.904.465", "document has a character that is not a digit 0-9 (byte 3)"},
		{"30904465\r", "document has a character that is not a digit 0-9 (byte 9)"},
	}
	for _, tt := range tests {
		for _, err := range []error{ValidateDocument(tt.in), ValidateDocument([]byte(tt.in))} {
			if tt.wantErr == "" && err != nil {
				t.Errorf("ValidateDocument(%q) = %v, want ok", tt.in, err)
			}
			if tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr) {
				t.Errorf("ValidateDocument(%q) = %v, want %q", tt.in, err, tt.wantErr)
			}
		}
	}
}

// TestValidateDocumentEveryLength checks every length around the limit
// against the rule computed with arithmetic: 10^(n-1) has n digits.
func TestValidateDocumentEveryLength(t *testing.T) {
	for n := 1; n <= 12; n++ {
		smallest := "1" + strings.Repeat("0", n-1)
		largest := strings.Repeat("9", n)
		for _, s := range []string{smallest, largest} {
			if err := ValidateDocument(s); (err == nil) != (n <= MaxDocumentDigits) {
				t.Errorf("ValidateDocument(%d digits) = %v, want ok=%v", n, err, n <= 9)
			}
		}
	}
}

func TestParseDate(t *testing.T) {
	const (
		format = "birthdate is not a date written YYYY-MM-DD"
		unreal = "birthdate is not a real date"
	)
	tests := []struct {
		in      string
		want    Date
		wantErr string
	}{
		{"1999-03-17", 19990317, ""},
		{"2000-02-29", 20000229, ""}, // divisible by 400
		{"2024-02-29", 20240229, ""},
		{"1996-02-29", 19960229, ""},
		{"1900-02-29", 0, unreal}, // divisible by 100, not 400
		{"2100-02-29", 0, unreal},
		{"2023-02-29", 0, unreal},
		{"2023-02-28", 20230228, ""},
		{"1999-02-30", 0, unreal},
		{"2000-02-30", 0, unreal},
		{"2023-04-31", 0, unreal},
		{"2023-04-30", 20230430, ""},
		{"2023-06-31", 0, unreal},
		{"2023-09-31", 0, unreal},
		{"2023-11-31", 0, unreal},
		{"2023-01-31", 20230131, ""},
		{"2023-12-31", 20231231, ""},
		{"2023-13-01", 0, unreal},
		{"2023-00-10", 0, unreal},
		{"2023-01-00", 0, unreal},
		{"2023-01-32", 0, unreal},
		{"0000-01-01", 0, unreal},
		{"0001-01-01", 10101, ""},
		{"9999-12-31", 99991231, ""}, // real; refused by the rules as after today
		{"1999-3-17", 0, format},
		{"1999-03-7", 0, format},
		{"99-03-17", 0, format},
		{"1999/03/17", 0, format},
		{"1999-03-17 ", 0, format},
		{" 1999-03-17", 0, format},
		{"1999-03-17T00:00:00", 0, format},
		{"19990317", 0, format},
		{"+999-03-17", 0, format},
		{"-999-03-17", 0, format},
		{"1999-+3-17", 0, format},
		{"1999-03-+7", 0, format},
		{"1999-0a-17", 0, format},
		{"199a-03-17", 0, format},
		{"1999-03-1a", 0, format},
		{"17-03-1999", 0, format},
		{"", 0, format},
		{"１９９９-03-17", 0, format},
	}
	for _, tt := range tests {
		dS, errS := ParseDate(tt.in)
		dB, errB := ParseDate([]byte(tt.in))
		for i, err := range []error{errS, errB} {
			d := []Date{dS, dB}[i]
			if tt.wantErr == "" && (err != nil || d != tt.want) {
				t.Errorf("ParseDate(%q) = %v, %v; want %v", tt.in, d, err, tt.want)
			}
			if tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr) {
				t.Errorf("ParseDate(%q) = %v, %v; want %q", tt.in, d, err, tt.wantErr)
			}
		}
	}
}

// TestParseDateAgainstTime checks every month and day (and some that do
// not exist) of years around each leap-year rule against package time.
func TestParseDateAgainstTime(t *testing.T) {
	years := []int{1, 4, 100, 400, 1600, 1700, 1800, 1899, 1900, 1940, 1996, 1999, 2000, 2001, 2004, 2005, 2023, 2024, 2100, 2400, 9996, 9999}
	for _, y := range years {
		for m := 0; m <= 13; m++ {
			for d := 0; d <= 32; d++ {
				s := fmt.Sprintf("%04d-%02d-%02d", y, m, d)
				at := time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC)
				exists := m >= 1 && m <= 12 && d >= 1 && at.Day() == d
				got, err := ParseDate(s)
				if (err == nil) != exists {
					t.Fatalf("ParseDate(%q) = %v, but the date exists: %v", s, err, exists)
				}
				if exists && got.String() != at.Format(time.DateOnly) {
					t.Fatalf("ParseDate(%q) = %v, want %s", s, got, at.Format(time.DateOnly))
				}
			}
		}
	}
}

func TestRulesBirthdate(t *testing.T) {
	rules := NewRules(testToday) // 2026-12-01
	tests := []struct {
		in, wantErr string
	}{
		{"1999-03-17", ""},
		{"1900-01-01", ""},
		{"2026-12-01", ""}, // today
		{"2000-02-29", ""}, // a leap day
		{"2024-02-29", ""},
		{"2026-11-30", ""},
		{"1899-12-31", "birthdate is before 1900-01-01"},
		{"0001-01-01", "birthdate is before 1900-01-01"},
		{"2026-12-02", "birthdate is after today (2026-12-01, UTC)"}, // tomorrow
		{"2027-01-01", "birthdate is after today (2026-12-01, UTC)"},
		{"9999-12-31", "birthdate is after today (2026-12-01, UTC)"},
		{"2025-02-29", "birthdate is not a real date"},
		{"1900-02-29", "birthdate is not a real date"},
	}
	good := Bet{FirstName: "Ana", LastName: "Pérez", Document: "30904465", Number: 1}
	for _, tt := range tests {
		b := good
		b.Birthdate = tt.in
		errBet := rules.Validate(b)
		_, errFields := rules.ValidateFields([]byte(b.FirstName), []byte(b.LastName), []byte(b.Document), []byte(b.Birthdate), []byte("1"))
		for _, err := range []error{errBet, errFields} {
			if tt.wantErr == "" && err != nil {
				t.Errorf("birthdate %s: %v, want ok", tt.in, err)
			}
			if tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr) {
				t.Errorf("birthdate %s: %v, want %q", tt.in, err, tt.wantErr)
			}
		}
	}
}

// TestNewRulesToday checks that the day is the UTC one, with package
// time's formatting as the oracle.
func TestNewRulesToday(t *testing.T) {
	buenosAires := time.FixedZone("ART", -3*60*60)
	tokyo := time.FixedZone("JST", 9*60*60)
	for _, now := range []time.Time{
		testToday,
		time.Date(2026, 12, 1, 22, 30, 0, 0, buenosAires), // already 2026-12-02 in UTC
		time.Date(2026, 12, 2, 7, 0, 0, 0, tokyo),         // still 2026-12-01 in UTC
		time.Date(2026, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2028, 2, 29, 12, 0, 0, 0, time.UTC),
	} {
		r := NewRules(now)
		want := now.UTC().Format(time.DateOnly)
		if got := r.Today().String(); got != want {
			t.Errorf("NewRules(%v).Today() = %s, want %s", now, got, want)
		}
		if err := r.CheckBirthdate(r.Today()); err != nil {
			t.Errorf("born today (%s): %v", want, err)
		}
		tomorrow := DateOf(now.UTC().AddDate(0, 0, 1))
		if err := r.CheckBirthdate(tomorrow); err == nil {
			t.Errorf("born tomorrow (%s) accepted on %s", tomorrow, want)
		}
	}
}

func TestZeroRulesRefuse(t *testing.T) {
	var zero Rules
	err := zero.Validate(Bet{FirstName: "Ana", LastName: "Pérez", Document: "1", Birthdate: "1999-03-17", Number: 1})
	if err == nil || !strings.Contains(err.Error(), "lottery.NewRules") {
		t.Fatalf("zero Rules: %v, want an error that says to build them with NewRules", err)
	}
}

func TestParseNumber(t *testing.T) {
	const nonDigit = "number has a character that is not a digit 0-9 (byte 1)"
	tests := []struct {
		in      string
		want    int
		wantErr string
	}{
		{"0", 0, ""},
		{"1", 1, ""},
		{"2201", 2201, ""},
		{"7574", 7574, ""},
		{"9999", 9999, ""},
		{"0000", 0, ""},
		{"0042", 42, ""},
		{"10000", 0, "number has 5 digits, at most 4 (0 to 9999)"},
		{"99999", 0, "number has 5 digits, at most 4 (0 to 9999)"},
		{"00001", 0, "number has 5 digits, at most 4 (0 to 9999)"},
		{"00007574", 0, "number has 8 digits, at most 4 (0 to 9999)"},
		{"", 0, "number is empty"},
		{"-1", 0, nonDigit},
		{"+1", 0, nonDigit},
		{" 1", 0, nonDigit},
		{"1 ", 0, "number has a character that is not a digit 0-9 (byte 2)"},
		{"1\r", 0, "number has a character that is not a digit 0-9 (byte 2)"},
		{"1.0", 0, "number has a character that is not a digit 0-9 (byte 2)"},
		{"1e3", 0, "number has a character that is not a digit 0-9 (byte 2)"},
		{"0x10", 0, "number has a character that is not a digit 0-9 (byte 2)"},
		{"٣", 0, nonDigit}, // Arabic-Indic digit
	}
	for _, tt := range tests {
		nS, errS := ParseNumber(tt.in)
		nB, errB := ParseNumber([]byte(tt.in))
		for i, err := range []error{errS, errB} {
			n := []int{nS, nB}[i]
			if tt.wantErr == "" && (err != nil || n != tt.want) {
				t.Errorf("ParseNumber(%q) = %d, %v; want %d", tt.in, n, err, tt.want)
			}
			if tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr) {
				t.Errorf("ParseNumber(%q) = %d, %v; want %q", tt.in, n, err, tt.wantErr)
			}
		}
	}
	// Every number of the range, written by fmt.
	for n := 0; n <= 10010; n++ {
		got, err := ParseNumber(fmt.Sprint(n))
		if n <= 9999 && (err != nil || got != n) {
			t.Fatalf("ParseNumber(%d) = %d, %v", n, got, err)
		}
		if n > 9999 && err == nil {
			t.Fatalf("ParseNumber(%d) accepted", n)
		}
	}
}

func TestRulesValidate(t *testing.T) {
	rules := NewRules(testToday)
	good := Bet{Agency: 1, FirstName: "Santiago Lionel", LastName: "Lorca", Document: "30904465", Birthdate: "1999-03-17", Number: 2201}
	tests := []struct {
		name    string
		change  func(*Bet)
		wantErr string
	}{
		{"valid", func(*Bet) {}, ""},
		{"accented names", func(b *Bet) { b.FirstName, b.LastName = "Ñandú", "Abadía" }, ""},
		{"number 0", func(b *Bet) { b.Number = 0 }, ""},
		{"number 9999", func(b *Bet) { b.Number = 9999 }, ""},
		{"agency not checked", func(b *Bet) { b.Agency = -5 }, ""},
		{"empty first name", func(b *Bet) { b.FirstName = "" }, "first name is empty"},
		{"last name with comma", func(b *Bet) { b.LastName = "Lorca, hijo" }, "last name contains ',' (byte 6)"},
		{"last name with semicolon", func(b *Bet) { b.LastName = "Lorca;1" }, "last name contains ';' (byte 6)"},
		{"document with letters", func(b *Bet) { b.Document = "30A" }, "document has a character that is not a digit 0-9 (byte 3)"},
		{"empty document", func(b *Bet) { b.Document = "" }, "document is empty"},
		{"date that does not exist", func(b *Bet) { b.Birthdate = "2023-02-29" }, "birthdate is not a real date"},
		{"born tomorrow", func(b *Bet) { b.Birthdate = "2026-12-02" }, "birthdate is after today (2026-12-01, UTC)"},
		{"number -1", func(b *Bet) { b.Number = -1 }, "number -1 is out of range 0..9999"},
		{"number 10000", func(b *Bet) { b.Number = 10000 }, "number 10000 is out of range 0..9999"},
		{"first field wrong is reported", func(b *Bet) { b.FirstName, b.Document = "a;b", "x" }, "first name contains ';' (byte 2)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := good
			tt.change(&b)
			err := rules.Validate(b)
			if tt.wantErr == "" && err != nil {
				t.Fatalf("Validate(%+v) = %v, want ok", b, err)
			}
			if tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr) {
				t.Fatalf("Validate(%+v) = %v, want %q", b, err, tt.wantErr)
			}
		})
	}
}

// TestDeprecatedShims: the clock-reading forms judge like today's Rules.
func TestDeprecatedShims(t *testing.T) {
	b := Bet{FirstName: "Ana", LastName: "Pérez", Document: "1", Birthdate: "1999-03-17", Number: 7574}
	if err := b.Validate(); err != nil {
		t.Fatal(err)
	}
	if n, err := ValidateFields([]byte("Ana"), []byte("Pérez"), []byte("1"), []byte("1999-03-17"), []byte("7574")); err != nil || n != 7574 {
		t.Fatalf("ValidateFields = %d, %v", n, err)
	}
	b.Birthdate = time.Now().UTC().AddDate(0, 0, 2).Format(time.DateOnly)
	if err := b.Validate(); err == nil {
		t.Fatalf("born the day after tomorrow (%s) accepted", b.Birthdate)
	}
}

// TestFieldErrorsNeverQuote feeds bets whose every field carries a
// recognisable marker through every way validation can fail, and checks
// that no error repeats a marker: errors describe fields, never quote them.
func TestFieldErrorsNeverQuote(t *testing.T) {
	rules := NewRules(testToday)
	// Markers that our messages cannot produce by themselves.
	const (
		firstMark = "Qzxfirst"
		lastMark  = "Qzxlast"
		docMark   = "31415926"
		dateMark  = "87-06-0" // inside 1987-06-05
		numMark   = "Qzxnum"
	)
	markers := []string{firstMark, lastMark, docMark, dateMark, numMark}
	good := [5]string{firstMark, lastMark, docMark, "1987-06-05", "7574"}
	nameBad := func(m string) []string {
		return []string{
			m + ";", m + ",", m + "\x00", m + "\t", m + "\x1b", m + "\x7f", m + "\r", m + "\n",
			m + "\u0085", m + "\u2028", m + "\u2029", m + "\xff", m + "\xc3", m + "\xed\xa0\x80",
			strings.Repeat(m, 60000/len(m)), strings.Repeat(m, MaxNameBytes/len(m)+1), "",
		}
	}
	bad := [5][]string{
		nameBad(firstMark),
		nameBad(lastMark),
		{docMark + "00", "0" + docMark, docMark + "a", "-" + docMark, docMark + " ", "١" + docMark,
			strings.Repeat(docMark, 100), "000000000000000000", ""},
		{"1887-06-05", "2987-06-05", "1987-06-05T00", " 1987-06-05", "1987-06-05\x00", "1987/06/05",
			"87-06-05", "1987-06-0x", "9987-06-05", ""},
		{numMark, "7574" + numMark, "-" + numMark, "00007574", "10000", "-1", ""},
	}
	fails := 0
	for field := range bad {
		for _, v := range bad[field] {
			f := good
			f[field] = v
			_, err := rules.ValidateFields([]byte(f[0]), []byte(f[1]), []byte(f[2]), []byte(f[3]), []byte(f[4]))
			if err == nil {
				t.Errorf("field %d = %q accepted", field, v)
				continue
			}
			fails++
			for _, m := range markers {
				if strings.Contains(err.Error(), m) {
					t.Errorf("error %q quotes marker %q (field %d = %q)", err, m, field, v)
				}
			}
			if n, nerr := ParseNumber(f[4]); nerr == nil {
				if berr := rules.Validate(Bet{FirstName: f[0], LastName: f[1], Document: f[2], Birthdate: f[3], Number: n}); berr == nil || berr.Error() != err.Error() {
					t.Errorf("Validate(Bet) = %v, ValidateFields = %v", berr, err)
				}
			}
		}
	}
	if fails < 50 {
		t.Fatalf("only %d failures exercised", fails)
	}
}

func TestWins(t *testing.T) {
	for n, want := range map[int]bool{7574: true, 0: false, 7573: false, 7575: false, 9999: false, 4757: false} {
		if got := (Bet{Number: n}).Wins(); got != want {
			t.Errorf("Bet{Number: %d}.Wins() = %v, want %v", n, got, want)
		}
	}
}

func TestValidateAllocatesNothing(t *testing.T) {
	rules := NewRules(testToday)
	first, last := []byte("María José"), []byte("Ibáñez Güemes")
	doc, date, num := []byte("30904465"), []byte("1999-03-17"), []byte("7574")
	bet := Bet{FirstName: "María José", LastName: "Ibáñez Güemes", Document: "30904465", Birthdate: "1999-03-17", Number: 7574}
	tests := []struct {
		name string
		fn   func() error
	}{
		{"[]byte fields one by one", func() error {
			if err := ValidateName(FieldFirstName, first); err != nil {
				return err
			}
			if err := ValidateName(FieldLastName, last); err != nil {
				return err
			}
			if err := ValidateDocument(doc); err != nil {
				return err
			}
			d, err := ParseDate(date)
			if err != nil {
				return err
			}
			if err := rules.CheckBirthdate(d); err != nil {
				return err
			}
			_, err = ParseNumber(num)
			return err
		}},
		{"Rules.ValidateFields", func() error {
			_, err := rules.ValidateFields(first, last, doc, date, num)
			return err
		}},
		{"Rules.Validate (strings)", func() error { return rules.Validate(bet) }},
		{"string name with accents", func() error { return ValidateName(FieldLastName, "Ñandú Ibáñez") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			allocs := testing.AllocsPerRun(100, func() {
				if err := tt.fn(); err != nil {
					t.Fatal(err)
				}
			})
			if allocs != 0 {
				t.Fatalf("%v allocs, want 0", allocs)
			}
		})
	}
}

// TestBatchAroundMidnightAllocatesNothing validates batches the way the
// central does, building the rules per batch, while the clock crosses
// midnight: the bet born "today" is valid on both sides (the new day's
// rules accept yesterday), and nothing allocates.
func TestBatchAroundMidnightAllocatesNothing(t *testing.T) {
	before := time.Date(2026, 12, 31, 23, 59, 59, 999_000_000, time.UTC)
	clock := []time.Time{before, before.Add(time.Millisecond), before.Add(time.Second)}
	type line struct{ first, last, doc, date, num []byte }
	batch := []line{
		{[]byte("Ana"), []byte("Pérez"), []byte("1"), []byte("2026-12-31"), []byte("7574")},
		{[]byte("Ñandú José"), []byte("Güemes"), []byte("999999999"), []byte("1900-01-01"), []byte("0")},
		{[]byte("Maria De Los Angeles"), []byte("Abadía"), []byte("30904465"), []byte("2000-02-29"), []byte("0042")},
	}
	i := 0
	allocs := testing.AllocsPerRun(300, func() {
		rules := NewRules(clock[i%len(clock)])
		i++
		for _, l := range batch {
			if _, err := rules.ValidateFields(l.first, l.last, l.doc, l.date, l.num); err != nil {
				t.Fatal(err)
			}
		}
	})
	if allocs != 0 {
		t.Fatalf("validating a batch around midnight: %v allocs, want 0", allocs)
	}
	// The day after: born on 2027-01-01 passes only once the day has come.
	tomorrow := []byte("2027-01-01")
	if _, err := NewRules(before).ValidateFields(batch[0].first, batch[0].last, batch[0].doc, tomorrow, batch[0].num); err == nil {
		t.Error("born 2027-01-01 accepted at 23:59:59 on 2026-12-31")
	}
	if _, err := NewRules(before.Add(time.Millisecond)).ValidateFields(batch[0].first, batch[0].last, batch[0].doc, tomorrow, batch[0].num); err != nil {
		t.Errorf("born 2027-01-01 refused at midnight: %v", err)
	}
}

func BenchmarkValidateFields(b *testing.B) {
	rules := NewRules(testToday)
	first, last := []byte("Maria De Los Angeles"), []byte("Ibáñez")
	doc, date, num := []byte("30904465"), []byte("1999-03-17"), []byte("7574")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := rules.ValidateFields(first, last, doc, date, num); err != nil {
			b.Fatal(err)
		}
	}
}

// TestValidateNameEveryByteEveryPosition puts every byte value at every
// position of names of 8 to 24 bytes (so the word-at-a-time scan meets it
// at each offset of a word) and compares with the oracle of
// FuzzValidateName, and the error's byte position with the first bad one.
func TestValidateNameEveryByteEveryPosition(t *testing.T) {
	for n := 8; n <= 24; n++ {
		for i := 0; i < n; i++ {
			for c := 0; c < 256; c++ {
				b := []byte(strings.Repeat("x", n))
				b[i] = byte(c)
				s := string(b)
				want := utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool {
					return unicode.IsControl(r) || r == ';' || r == ','
				})
				err := ValidateName(FieldFirstName, b)
				if (err == nil) != want {
					t.Fatalf("ValidateName(%q) = %v, want ok=%v", s, err, want)
				}
				if err != nil && !strings.Contains(err.Error(), fmt.Sprintf("(byte %d)", i+1)) {
					t.Fatalf("ValidateName(%q) = %v, want it to name byte %d", s, err, i+1)
				}
			}
		}
	}
}
