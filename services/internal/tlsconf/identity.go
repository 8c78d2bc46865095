package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// AgencyURIPrefix starts the URI SAN that names an agency in its
// certificate: urn:loteria:agency:<id>, with id a decimal 1..MaxAgencyID
// without leading zeros.
const AgencyURIPrefix = "urn:loteria:agency:"

// MaxAgencyID is the largest agency id a certificate may carry (nine
// digits, so an id always fits an int32 and a metric label stays short).
const MaxAgencyID = 999_999_999

// ErrIdentity is wrapped by every error saying that a certificate does not
// name exactly one valid agency; test for it with errors.Is.
var ErrIdentity = errors.New("no valid agency identity")

// AgencyURI is the URI SAN that names agency id in its certificate.
func AgencyURI(id int) (*url.URL, error) {
	if id < 1 || id > MaxAgencyID {
		return nil, fmt.Errorf("agency id %d is out of range: it must be 1..%d", id, MaxAgencyID)
	}
	return url.Parse(AgencyURIPrefix + strconv.Itoa(id))
}

// AgencyID is the agency a certificate belongs to: the id in its one URI
// SAN urn:loteria:agency:<id>. Other URI SANs are ignored. A certificate
// with no such SAN, with two or more (even naming the same id), or whose
// id is not a decimal 1..999999999 without leading zeros gets an error
// wrapping ErrIdentity. The error describes the problem without quoting
// the certificate's contents.
//
// AgencyID trusts the certificate: call it only on a verified chain's leaf
// (ConnectionState.PeerCertificates[0] after a handshake with ServerConfig).
func AgencyID(cert *x509.Certificate) (int, error) {
	if cert == nil {
		return 0, fmt.Errorf("%w: there is no certificate", ErrIdentity)
	}
	found := 0
	var id string
	for _, u := range cert.URIs {
		if s := u.String(); len(s) >= len(AgencyURIPrefix) && strings.EqualFold(s[:len(AgencyURIPrefix)], AgencyURIPrefix) {
			found++
			id = s[len(AgencyURIPrefix):]
		}
	}
	switch {
	case found == 0:
		return 0, fmt.Errorf("%w: the certificate has no URI SAN %s<id>; issue agency certificates with bin/certs", ErrIdentity, AgencyURIPrefix)
	case found > 1:
		return 0, fmt.Errorf("%w: the certificate has %d URI SANs %s<id>, it must have exactly one", ErrIdentity, found, AgencyURIPrefix)
	}
	n, ok := parseID(id)
	if !ok {
		return 0, fmt.Errorf("%w: the id after %s in the certificate is not a decimal number from 1 to %d without leading zeros",
			ErrIdentity, AgencyURIPrefix, MaxAgencyID)
	}
	return n, nil
}

// parseID reads 1..MaxAgencyID written in decimal digits only, without
// sign or leading zeros, so each id has exactly one spelling.
func parseID(s string) (int, bool) {
	if s == "" || len(s) > len(strconv.Itoa(MaxAgencyID)) || s[0] == '0' {
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
	return n, n >= 1 && n <= MaxAgencyID
}

// PeerAgency is the agency id of the peer of a finished handshake: AgencyID
// of its leaf certificate.
func PeerAgency(cs tls.ConnectionState) (int, error) {
	if len(cs.PeerCertificates) == 0 {
		return 0, fmt.Errorf("%w: the peer sent no certificate", ErrIdentity)
	}
	return AgencyID(cs.PeerCertificates[0])
}
