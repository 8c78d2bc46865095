package tlsconf_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/loteria/loteria/services/internal/tlsconf"
)

func TestAgencyID(t *testing.T) {
	tests := []struct {
		name string
		uris []string
		want int // 0: an error wrapping ErrIdentity
	}{
		{"one", []string{"urn:loteria:agency:1"}, 1},
		{"largest", []string{"urn:loteria:agency:999999999"}, 999999999},
		{"case of the prefix", []string{"URN:Loteria:Agency:12"}, 12},
		{"other URIs are ignored", []string{"spiffe://loteria/central", "urn:loteria:agency:42", "https://example.com/x"}, 42},
		{"no URI", nil, 0},
		{"only other URIs", []string{"spiffe://loteria/agency/3", "urn:loteria:central:3"}, 0},
		{"two, same id", []string{"urn:loteria:agency:2", "urn:loteria:agency:2"}, 0},
		{"two, different ids", []string{"urn:loteria:agency:2", "urn:loteria:agency:3"}, 0},
		{"zero", []string{"urn:loteria:agency:0"}, 0},
		{"too large", []string{"urn:loteria:agency:1000000000"}, 0},
		{"leading zero", []string{"urn:loteria:agency:07"}, 0},
		{"negative", []string{"urn:loteria:agency:-1"}, 0},
		{"plus sign", []string{"urn:loteria:agency:+1"}, 0},
		{"not a number", []string{"urn:loteria:agency:x9y8z7"}, 0},
		{"trailing text", []string{"urn:loteria:agency:3x9y8z7"}, 0},
		{"empty id", []string{"urn:loteria:agency:"}, 0},
		{"percent-encoded digit", []string{"urn:loteria:agency:%33"}, 0},
		{"id beyond int64", []string{"urn:loteria:agency:99999999999999999999999"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cert := &x509.Certificate{}
			for _, s := range tt.uris {
				u, err := url.Parse(s)
				if err != nil {
					t.Fatal(err)
				}
				cert.URIs = append(cert.URIs, u)
			}
			got, err := tlsconf.AgencyID(cert)
			if tt.want != 0 {
				if err != nil || got != tt.want {
					t.Fatalf("AgencyID = %d, %v; want %d", got, err, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("AgencyID = %d, want an error", got)
			}
			if !errors.Is(err, tlsconf.ErrIdentity) {
				t.Errorf("error %q does not wrap ErrIdentity", err)
			}
			if strings.Contains(err.Error(), "x9y8z7") {
				t.Errorf("error %q quotes the certificate", err)
			}
		})
	}
}

func TestAgencyIDNil(t *testing.T) {
	if _, err := tlsconf.AgencyID(nil); !errors.Is(err, tlsconf.ErrIdentity) {
		t.Fatalf("AgencyID(nil): %v, want ErrIdentity", err)
	}
	if _, err := tlsconf.PeerAgency(tls.ConnectionState{}); !errors.Is(err, tlsconf.ErrIdentity) {
		t.Fatalf("PeerAgency without certificates: %v, want ErrIdentity", err)
	}
}

func TestAgencyURI(t *testing.T) {
	tests := []struct {
		id   int
		want string // "" for an error
	}{
		{1, "urn:loteria:agency:1"},
		{305, "urn:loteria:agency:305"},
		{999999999, "urn:loteria:agency:999999999"},
		{0, ""},
		{-4, ""},
		{1000000000, ""},
	}
	for _, tt := range tests {
		u, err := tlsconf.AgencyURI(tt.id)
		switch {
		case tt.want == "" && err == nil:
			t.Errorf("AgencyURI(%d) = %v, want an error", tt.id, u)
		case tt.want != "" && (err != nil || u.String() != tt.want):
			t.Errorf("AgencyURI(%d) = %v, %v; want %s", tt.id, u, err, tt.want)
		case tt.want != "":
			// What AgencyURI writes, AgencyID reads back.
			if got, err := tlsconf.AgencyID(&x509.Certificate{URIs: []*url.URL{u}}); err != nil || got != tt.id {
				t.Errorf("AgencyID(AgencyURI(%d)) = %d, %v", tt.id, got, err)
			}
		}
	}
}
