package wire

import (
	"strconv"
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
