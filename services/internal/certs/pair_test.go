package certs_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/loteria/loteria/services/internal/certs"
)

var t0 = time.Date(2030, 3, 4, 5, 6, 7, 0, time.UTC)

func newCA(t *testing.T) *certs.Pair {
	t.Helper()
	ca, err := certs.NewCA(certs.Spec{CommonName: "CA", NotBefore: t0.Add(-time.Hour), NotAfter: t0.Add(1000 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func TestIssue(t *testing.T) {
	ca := newCA(t)
	if !ca.Cert.IsCA || !ca.Cert.MaxPathLenZero || ca.Cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Fatalf("CA: IsCA %v MaxPathLenZero %v KeyUsage %v", ca.Cert.IsCA, ca.Cert.MaxPathLenZero, ca.Cert.KeyUsage)
	}
	tests := []struct {
		name      string
		spec      certs.Spec
		usages    []x509.ExtKeyUsage
		uris      []string
		dns, ips  []string
		verifyAs  x509.ExtKeyUsage
		verifyDNS string
	}{
		{name: "agency", spec: certs.Spec{Agency: 17},
			usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, uris: []string{"urn:loteria:agency:17"},
			verifyAs: x509.ExtKeyUsageClientAuth},
		{name: "central", spec: certs.Spec{Hosts: []string{"central", "127.0.0.1", "::1", "*.example.com"}},
			usages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, dns: []string{"central", "*.example.com"}, ips: []string{"127.0.0.1", "::1"},
			verifyAs: x509.ExtKeyUsageServerAuth, verifyDNS: "central"},
		{name: "agency with extra URI", spec: certs.Spec{Agency: 2, URIs: []*url.URL{{Scheme: "spiffe", Host: "x", Path: "/y"}}},
			usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, uris: []string{"urn:loteria:agency:2", "spiffe://x/y"},
			verifyAs: x509.ExtKeyUsageClientAuth},
		{name: "explicit usage", spec: certs.Spec{Hosts: []string{"h"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}},
			usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, dns: []string{"h"}, verifyAs: x509.ExtKeyUsageClientAuth},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nb, na := t0.Add(10*time.Hour), t0.Add(11*time.Hour) // not the CA's: a leaf gets the validity asked for
			spec := tt.spec
			spec.NotBefore, spec.NotAfter = nb, na
			p, err := ca.Issue(spec)
			if err != nil {
				t.Fatal(err)
			}
			c := p.Cert
			if !c.NotBefore.Equal(nb) || !c.NotAfter.Equal(na) {
				t.Errorf("validity %s..%s, want %s..%s", c.NotBefore, c.NotAfter, nb, na)
			}
			if c.IsCA {
				t.Error("a leaf is a CA")
			}
			if k, ok := c.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
				t.Errorf("public key %T, want ECDSA P-256", c.PublicKey)
			}
			if !slices.Equal(c.ExtKeyUsage, tt.usages) {
				t.Errorf("ExtKeyUsage %v, want %v", c.ExtKeyUsage, tt.usages)
			}
			var uris, ips []string
			for _, u := range c.URIs {
				uris = append(uris, u.String())
			}
			for _, ip := range c.IPAddresses {
				ips = append(ips, ip.String())
			}
			if !slices.Equal(uris, tt.uris) || !slices.Equal(c.DNSNames, tt.dns) || !slices.Equal(ips, tt.ips) {
				t.Errorf("SANs: URIs %q DNS %q IPs %q; want %q %q %q", uris, c.DNSNames, ips, tt.uris, tt.dns, tt.ips)
			}
			roots := x509.NewCertPool()
			roots.AddCert(ca.Cert)
			opts := x509.VerifyOptions{Roots: roots, CurrentTime: nb.Add(time.Minute), KeyUsages: []x509.ExtKeyUsage{tt.verifyAs}, DNSName: tt.verifyDNS}
			if _, err := c.Verify(opts); err != nil {
				t.Errorf("does not verify against its CA: %v", err)
			}
			// The PEM forms are what crypto/tls reads.
			key, err := p.KeyPEM()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tls.X509KeyPair(p.CertPEM(), key); err != nil {
				t.Errorf("crypto/tls refuses the PEM pair: %v", err)
			}
		})
	}
}

func TestIssueErrors(t *testing.T) {
	ca := newCA(t)
	leaf, err := ca.Issue(certs.Spec{Agency: 1, NotBefore: t0, NotAfter: t0.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	valid := func(s certs.Spec) certs.Spec { s.NotBefore, s.NotAfter = t0, t0.Add(time.Hour); return s }
	tests := []struct {
		name   string
		issuer *certs.Pair
		spec   certs.Spec
		want   string
	}{
		{"nothing to certify", ca, valid(certs.Spec{CommonName: "x"}), "needs an agency"},
		{"agency 0 and nothing else", ca, valid(certs.Spec{Agency: 0}), "needs an agency"},
		{"agency out of range", ca, valid(certs.Spec{Agency: 1_000_000_000}), "out of range"},
		{"bad host", ca, valid(certs.Spec{Hosts: []string{"two words"}}), "neither an IP address nor a DNS name"},
		{"empty host", ca, valid(certs.Spec{Hosts: []string{""}}), "neither an IP address nor a DNS name"},
		{"backwards validity", ca, certs.Spec{Agency: 1, NotBefore: t0, NotAfter: t0.Add(-time.Second)}, "NotAfter must come after NotBefore"},
		{"issuer not a CA", leaf, valid(certs.Spec{Agency: 2}), "not a CA"},
	}
	for _, tt := range tests {
		if _, err := tt.issuer.Issue(tt.spec); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want one saying %q", tt.name, err, tt.want)
		}
	}
	for _, spec := range []certs.Spec{
		{Agency: 1, NotBefore: t0, NotAfter: t0.Add(time.Hour)},
		{Hosts: []string{"h"}, NotBefore: t0, NotAfter: t0.Add(time.Hour)},
		{NotBefore: t0, NotAfter: t0},
	} {
		if _, err := certs.NewCA(spec); err == nil {
			t.Errorf("NewCA(%+v) made a CA", spec)
		}
	}
}

func TestWriteAndLoad(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t)
	a, err := ca.Issue(certs.Spec{Agency: 1, NotBefore: t0, NotAfter: t0.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "a.pem"), filepath.Join(dir, "a-key.pem")
	if err := a.Write(certFile, keyFile, false); err != nil {
		t.Fatal(err)
	}
	for path, mode := range map[string]os.FileMode{certFile: 0o644, keyFile: 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode().Perm(), mode)
		}
	}
	// The files are standard PEM, read here with encoding/pem and crypto/x509.
	kb, _ := os.ReadFile(keyFile)
	block, _ := pem.Decode(kb)
	if block == nil || block.Type != "PRIVATE KEY" {
		t.Fatalf("key file does not start with a PKCS #8 PRIVATE KEY block")
	}
	if _, err := x509.ParsePKCS8PrivateKey(block.Bytes); err != nil {
		t.Fatal(err)
	}
	if _, err := tls.LoadX509KeyPair(certFile, keyFile); err != nil {
		t.Fatal(err)
	}

	// No overwrite without asking; the file is left as it was.
	b, err := ca.Issue(certs.Spec{Agency: 2, NotBefore: t0, NotAfter: t0.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(certFile)
	if err := b.Write(certFile, keyFile, false); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("Write over existing files: %v, want 'already exists'", err)
	}
	if after, _ := os.ReadFile(certFile); string(after) != string(before) {
		t.Error("a refused Write changed the certificate")
	}
	if err := b.Write(certFile, keyFile, true); err != nil {
		t.Fatal(err)
	}
	got, err := certs.Load(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Cert.Equal(b.Cert) {
		t.Error("Load after an overwrite does not give the new certificate")
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 {
		t.Errorf("%d files in the directory, want 2 (no temporary files left)", len(ents))
	}

	// A key that is not the certificate's.
	other := filepath.Join(dir, "other-key.pem")
	kp, _ := a.KeyPEM()
	if err := os.WriteFile(other, kp, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := certs.Load(certFile, other); err == nil || !strings.Contains(err.Error(), "is not the key of") {
		t.Errorf("Load with another key: %v", err)
	}
	if _, err := certs.Load(keyFile, keyFile); err == nil || !strings.Contains(err.Error(), "no PEM CERTIFICATE block") {
		t.Errorf("Load of a key as certificate: %v", err)
	}
}
