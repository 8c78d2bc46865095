package lottery

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestValidateName(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{"Santiago Lionel", true},
		{"Abadía", true},
		{"Ñandú", true},
		{"José María", true},
		{"D'Alessandro", true},
		{"Müller-Lüdenscheidt", true},
		{"a", true},
		{strings.Repeat("é", 500), true},
		{"", false},
		{"a;b", false},
		{";", false},
		{"a,b", false},
		{"a\nb", false},
		{"a\r", false},
		{"\xff", false},
		{"Jos\xc3", false},      // truncated UTF-8
		{"\xc3\x28", false},     // invalid continuation
		{"\xed\xa0\x80", false}, // UTF-16 surrogate
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.in), func(t *testing.T) {
			errS := ValidateName("first name", tt.in)
			errB := ValidateName("first name", []byte(tt.in))
			if (errS == nil) != tt.ok || (errB == nil) != tt.ok {
				t.Fatalf("ValidateName(%q) = %v (string), %v ([]byte); want ok=%v", tt.in, errS, errB, tt.ok)
			}
			if errS != nil && !strings.Contains(errS.Error(), "first name") {
				t.Fatalf("error %q does not say which field", errS)
			}
		})
	}
}

func TestValidateDocument(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{"0", true},
		{"1", true},
		{"30904465", true},
		{"000000001", true},
		{strings.Repeat("9", 18), true},
		{strings.Repeat("9", 19), false},
		{"", false},
		{"12a", false},
		{" 12", false},
		{"12 ", false},
		{"-1", false},
		{"+1", false},
		{"1.5", false},
		{"１２", false}, // full-width digits
		{"30.904.465", false},
	}
	for _, tt := range tests {
		errS := ValidateDocument(tt.in)
		errB := ValidateDocument([]byte(tt.in))
		if (errS == nil) != tt.ok || (errB == nil) != tt.ok {
			t.Errorf("ValidateDocument(%q) = %v, %v; want ok=%v", tt.in, errS, errB, tt.ok)
		}
	}
}

func TestValidateDate(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{"1999-03-17", true},
		{"2000-02-29", true}, // divisible by 400
		{"2024-02-29", true},
		{"1996-02-29", true},
		{"1900-02-29", false}, // divisible by 100, not 400
		{"2100-02-29", false},
		{"2023-02-29", false},
		{"2023-02-28", true},
		{"1999-02-30", false},
		{"2000-02-30", false},
		{"2023-04-31", false},
		{"2023-04-30", true},
		{"2023-06-31", false},
		{"2023-09-31", false},
		{"2023-11-31", false},
		{"2023-01-31", true},
		{"2023-12-31", true},
		{"2023-13-01", false},
		{"2023-00-10", false},
		{"2023-01-00", false},
		{"2023-01-32", false},
		{"0000-01-01", false},
		{"0001-01-01", true},
		{"9999-12-31", true},
		{"1999-3-17", false},
		{"1999-03-7", false},
		{"99-03-17", false},
		{"1999/03/17", false},
		{"1999-03-17 ", false},
		{" 1999-03-17", false},
		{"1999-03-17T00:00:00", false},
		{"19990317", false},
		{"+999-03-17", false},
		{"-999-03-17", false},
		{"1999-+3-17", false},
		{"1999-03-+7", false},
		{"1999-0a-17", false},
		{"199a-03-17", false},
		{"1999-03-1a", false},
		{"17-03-1999", false},
		{"", false},
		{"１９９９-03-17", false},
	}
	for _, tt := range tests {
		errS := ValidateDate(tt.in)
		errB := ValidateDate([]byte(tt.in))
		if (errS == nil) != tt.ok || (errB == nil) != tt.ok {
			t.Errorf("ValidateDate(%q) = %v, %v; want ok=%v", tt.in, errS, errB, tt.ok)
		}
	}
}

// TestValidateDateAgainstTime checks every month and day (and some that do
// not exist) of years around each leap-year rule against package time.
func TestValidateDateAgainstTime(t *testing.T) {
	years := []int{1, 4, 100, 400, 1600, 1700, 1800, 1899, 1900, 1940, 1996, 1999, 2000, 2001, 2004, 2005, 2023, 2024, 2100, 2400, 9996, 9999}
	for _, y := range years {
		for m := 0; m <= 13; m++ {
			for d := 0; d <= 32; d++ {
				s := fmt.Sprintf("%04d-%02d-%02d", y, m, d)
				exists := m >= 1 && m <= 12 && d >= 1 &&
					time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC).Day() == d
				if err := ValidateDate(s); (err == nil) != exists {
					t.Errorf("ValidateDate(%q) = %v, but the date exists: %v", s, err, exists)
				}
			}
		}
	}
}

func TestParseNumber(t *testing.T) {
	tests := []struct {
		in   string
		want int
		ok   bool
	}{
		{"0", 0, true},
		{"1", 1, true},
		{"2201", 2201, true},
		{"7574", 7574, true},
		{"9999", 9999, true},
		{"0000", 0, true},
		{"0042", 42, true},
		{"10000", 0, false},
		{"99999", 0, false},
		{"00001", 0, false}, // five digits
		{"", 0, false},
		{"-1", 0, false},
		{"+1", 0, false},
		{" 1", 0, false},
		{"1 ", 0, false},
		{"1\r", 0, false},
		{"1.0", 0, false},
		{"1e3", 0, false},
		{"0x10", 0, false},
		{"٣", 0, false}, // Arabic-Indic digit
	}
	for _, tt := range tests {
		nS, errS := ParseNumber(tt.in)
		nB, errB := ParseNumber([]byte(tt.in))
		if (errS == nil) != tt.ok || (errB == nil) != tt.ok {
			t.Errorf("ParseNumber(%q) = %v, %v; want ok=%v", tt.in, errS, errB, tt.ok)
			continue
		}
		if tt.ok && (nS != tt.want || nB != tt.want) {
			t.Errorf("ParseNumber(%q) = %d, %d; want %d", tt.in, nS, nB, tt.want)
		}
	}
	// Every number of the range, as written by strconv-independent fmt.
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

func TestBetValidate(t *testing.T) {
	good := Bet{Agency: 1, FirstName: "Santiago Lionel", LastName: "Lorca", Document: "30904465", Birthdate: "1999-03-17", Number: 2201}
	tests := []struct {
		name    string
		change  func(*Bet)
		ok      bool
		mention string
	}{
		{"valid", func(*Bet) {}, true, ""},
		{"accented names", func(b *Bet) { b.FirstName, b.LastName = "Ñandú", "Abadía" }, true, ""},
		{"number 0", func(b *Bet) { b.Number = 0 }, true, ""},
		{"number 9999", func(b *Bet) { b.Number = 9999 }, true, ""},
		{"agency not checked", func(b *Bet) { b.Agency = -5 }, true, ""},
		{"empty first name", func(b *Bet) { b.FirstName = "" }, false, "first name"},
		{"last name with comma", func(b *Bet) { b.LastName = "Lorca, hijo" }, false, "last name"},
		{"last name with semicolon", func(b *Bet) { b.LastName = "Lorca;1" }, false, "last name"},
		{"document with letters", func(b *Bet) { b.Document = "30A" }, false, "document"},
		{"empty document", func(b *Bet) { b.Document = "" }, false, "document"},
		{"date that does not exist", func(b *Bet) { b.Birthdate = "2023-02-29" }, false, "date"},
		{"number -1", func(b *Bet) { b.Number = -1 }, false, "number"},
		{"number 10000", func(b *Bet) { b.Number = 10000 }, false, "number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := good
			tt.change(&b)
			err := b.Validate()
			if (err == nil) != tt.ok {
				t.Fatalf("Validate(%+v) = %v, want ok=%v", b, err, tt.ok)
			}
			if err != nil && !strings.Contains(err.Error(), tt.mention) {
				t.Fatalf("error %q does not mention %q", err, tt.mention)
			}
		})
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
	first, last := []byte("María José"), []byte("Ibáñez")
	doc, date, num := []byte("30904465"), []byte("1999-03-17"), []byte("7574")
	allocs := testing.AllocsPerRun(100, func() {
		if ValidateName("first name", first) != nil || ValidateName("last name", last) != nil ||
			ValidateDocument(doc) != nil || ValidateDate(date) != nil {
			t.Fatal("valid fields refused")
		}
		if _, err := ParseNumber(num); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("validating a good bet's []byte fields: %v allocs, want 0", allocs)
	}
}
