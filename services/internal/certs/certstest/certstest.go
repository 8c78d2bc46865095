// Package certstest mints certificates for tests of other packages: a CA,
// agency and central certificates with any validity, written to files the
// way bin/certs writes them. Every helper fails the test on error.
package certstest

import (
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/loteria/loteria/services/internal/certs"
)

// Validity is the default lifetime of what this package issues: from an
// hour ago to a day from now.
func Validity() (notBefore, notAfter time.Time) {
	now := time.Now()
	return now.Add(-time.Hour), now.Add(24 * time.Hour)
}

// CA is a fresh CA valid for Validity.
func CA(tb testing.TB) *certs.Pair {
	tb.Helper()
	nb, na := Validity()
	ca, err := certs.NewCA(certs.Spec{CommonName: "test CA", NotBefore: nb, NotAfter: na})
	if err != nil {
		tb.Fatal(err)
	}
	return ca
}

// Issue has ca issue spec; a zero NotBefore/NotAfter pair means Validity.
func Issue(tb testing.TB, ca *certs.Pair, spec certs.Spec) *certs.Pair {
	tb.Helper()
	if spec.NotBefore.IsZero() && spec.NotAfter.IsZero() {
		spec.NotBefore, spec.NotAfter = Validity()
	}
	p, err := ca.Issue(spec)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// Agency is a certificate for agency id, valid for Validity.
func Agency(tb testing.TB, ca *certs.Pair, id int) *certs.Pair {
	tb.Helper()
	return Issue(tb, ca, certs.Spec{CommonName: "test agency", Agency: id})
}

// Central is a server certificate for hosts, valid for Validity.
func Central(tb testing.TB, ca *certs.Pair, hosts ...string) *certs.Pair {
	tb.Helper()
	return Issue(tb, ca, certs.Spec{CommonName: "test central", Hosts: hosts})
}

// Write writes p as dir/<name>.pem and dir/<name>-key.pem and returns the
// paths.
func Write(tb testing.TB, dir, name string, p *certs.Pair) certs.Files {
	tb.Helper()
	f := certs.Files{Cert: filepath.Join(dir, name+".pem"), Key: filepath.Join(dir, name+"-key.pem")}
	if err := p.Write(f.Cert, f.Key, false); err != nil {
		tb.Fatal(err)
	}
	return f
}

// URI parses s, for Spec.URIs.
func URI(tb testing.TB, s string) *url.URL {
	tb.Helper()
	u, err := url.Parse(s)
	if err != nil {
		tb.Fatal(err)
	}
	return u
}
