package wire

import (
	"strconv"
	"strings"
	"testing"
)

// TestMaxAgencyIsTheWiresLimit: MaxAgency is the largest agency a batch
// header and a HELLO carry, so the settings bounded by it (CLIENT_COUNT,
// CLI_ID) are bounded by what can be sent.
func TestMaxAgencyIsTheWiresLimit(t *testing.T) {
	if got := len(strconv.Itoa(MaxAgency)); got != AgencyDigits {
		t.Fatalf("MaxAgency %d has %d digits, AgencyDigits is %d", MaxAgency, got, AgencyDigits)
	}
	tests := []struct {
		name   string
		agency int
		ok     bool
	}{
		{"MaxAgency", MaxAgency, true},
		{"MaxAgency+1", MaxAgency + 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := strconv.Itoa(tt.agency)
			_, _, err := ParseBatch([]byte(id+";0\n"), nil)
			if (err == nil) != tt.ok {
				t.Errorf("ParseBatch of agency %s: error %v, want accepted %v", id, err, tt.ok)
			}
			_, err = ParseHello([]byte("HELLO;v=1;agency=" + id + ";fp=ab"))
			if (err == nil) != tt.ok {
				t.Errorf("ParseHello of agency %s: error %v, want accepted %v", id, err, tt.ok)
			}
		})
	}
}

func TestParseHello(t *testing.T) {
	tests := []struct {
		name    string
		payload string
		want    Hello
		errHas  []string // nil: no error
	}{
		{"v1", "HELLO;v=1;agency=7;fp=ab", Hello{Version: 1, Agency: 7, Fingerprint: "ab", Total: -1}, nil},
		{"a newer version, round and total", "HELLO;v=3;agency=7;fp=ab;round=2;total=10", Hello{Version: 3, Agency: 7, Fingerprint: "ab", Round: 2, Total: 10}, nil},
		{"no version", "HELLO;agency=7;fp=ab", Hello{}, []string{"without a version v="}},
		// v=0 was sent: it is unsupported, not absent.
		{"version 0", "HELLO;v=0;agency=7;fp=ab", Hello{}, []string{"v=0", "not supported", "start at 1"}},
		{"version 0 with leading zeros", "HELLO;v=00;agency=7;fp=ab", Hello{}, []string{"v=0", "not supported"}},
		{"version not a number", "HELLO;v=x;agency=7;fp=ab", Hello{}, []string{"v=", "not a number"}},
		{"no agency", "HELLO;v=1;fp=ab", Hello{}, []string{"without an agency="}},
		{"no fingerprint", "HELLO;v=1;agency=7", Hello{}, []string{"without a stream fingerprint"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := ParseHello([]byte(tt.payload))
			if tt.errHas == nil {
				if err != nil || h != tt.want {
					t.Fatalf("ParseHello = %+v, %v; want %+v", h, err, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("ParseHello accepted %q", tt.payload)
			}
			for _, s := range tt.errHas {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
		})
	}
}
