package certs_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/loteria/loteria/services/internal/certs"
)

// readCert reads dir/name with encoding/pem and crypto/x509 only.
func readCert(t *testing.T, dir, name string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("%s: no CERTIFICATE block", name)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		m[e.Name()] = string(b)
	}
	return m
}

func names(n int) []string {
	out := []string{"ca-key.pem", "ca.pem", "central-key.pem", "central.pem"}
	for i := 1; i <= n; i++ {
		out = append(out, fmt.Sprintf("agency-%d-key.pem", i), fmt.Sprintf("agency-%d.pem", i))
	}
	return out
}

func clock(t time.Time) func() time.Time { return func() time.Time { return t } }

func TestGenerateFresh(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "certs")
	b, err := certs.Generate(dir, certs.Options{Agencies: 3, Now: clock(t0)})
	if err != nil {
		t.Fatal(err)
	}
	got := slices.Sorted(maps.Keys(snapshot(t, dir)))
	want := names(3)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("files %q, want %q", got, want)
	}
	if len(b.Written) != len(want) || len(b.Kept) != 0 || !b.NewCA {
		t.Errorf("Bundle: %d written, %d kept, NewCA %v", len(b.Written), len(b.Kept), b.NewCA)
	}
	for _, n := range want {
		fi, err := os.Stat(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		wantMode := os.FileMode(0o644)
		if strings.HasSuffix(n, "-key.pem") {
			wantMode = 0o600
		}
		if fi.Mode().Perm() != wantMode {
			t.Errorf("%s: mode %v, want %v", n, fi.Mode().Perm(), wantMode)
		}
	}

	ca := readCert(t, dir, "ca.pem")
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	if !ca.IsCA || ca.CheckSignatureFrom(ca) != nil {
		t.Error("ca.pem is not a self-signed CA")
	}
	// Default validity: one year from now, starting a little before now.
	wantEnd := t0.Add(365 * 24 * time.Hour)
	for _, n := range []string{"ca.pem", "central.pem", "agency-1.pem", "agency-2.pem", "agency-3.pem"} {
		c := readCert(t, dir, n)
		if !c.NotAfter.Equal(wantEnd) || !c.NotBefore.Before(t0) || t0.Sub(c.NotBefore) > time.Hour {
			t.Errorf("%s: valid %s..%s, want from shortly before %s to %s", n, c.NotBefore, c.NotAfter, t0, wantEnd)
		}
		if k, ok := c.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
			t.Errorf("%s: key %T, want ECDSA P-256", n, c.PublicKey)
		}
		if _, err := tls.LoadX509KeyPair(filepath.Join(dir, n), filepath.Join(dir, strings.TrimSuffix(n, ".pem")+"-key.pem")); err != nil {
			t.Errorf("%s and its key: %v", n, err)
		}
	}

	central := readCert(t, dir, "central.pem")
	var ips []string
	for _, ip := range central.IPAddresses {
		ips = append(ips, ip.String())
	}
	if !slices.Equal(central.DNSNames, []string{"server", "central", "localhost"}) || !slices.Equal(ips, []string{"127.0.0.1", "::1"}) {
		t.Errorf("central SANs: DNS %q IP %q", central.DNSNames, ips)
	}
	for _, host := range []string{"server", "central", "localhost", "127.0.0.1", "::1"} {
		if _, err := central.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: t0, DNSName: host}); err != nil {
			t.Errorf("central.pem for %s: %v", host, err)
		}
	}
	for i := 1; i <= 3; i++ {
		c := readCert(t, dir, fmt.Sprintf("agency-%d.pem", i))
		if len(c.URIs) != 1 || c.URIs[0].String() != fmt.Sprintf("urn:loteria:agency:%d", i) {
			t.Errorf("agency-%d.pem URIs %v", i, c.URIs)
		}
		if _, err := c.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: t0, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Errorf("agency-%d.pem as a client: %v", i, err)
		}
		if _, err := c.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: t0}); err == nil {
			t.Errorf("agency-%d.pem verifies as a server certificate", i)
		}
	}
}

func TestGenerateOptions(t *testing.T) {
	dir := t.TempDir()
	if _, err := certs.Generate(dir, certs.Options{Agencies: 1, Hosts: []string{"central.example", "10.1.2.3"}, Validity: 48 * time.Hour, Now: clock(t0)}); err != nil {
		t.Fatal(err)
	}
	c := readCert(t, dir, "central.pem")
	if !slices.Equal(c.DNSNames, []string{"central.example"}) || len(c.IPAddresses) != 1 || c.IPAddresses[0].String() != "10.1.2.3" {
		t.Errorf("central SANs: DNS %q IP %v", c.DNSNames, c.IPAddresses)
	}
	for _, n := range []string{"ca.pem", "central.pem", "agency-1.pem"} {
		if got := readCert(t, dir, n).NotAfter; !got.Equal(t0.Add(48 * time.Hour)) {
			t.Errorf("%s ends %s, want %s", n, got, t0.Add(48*time.Hour))
		}
	}

	for _, bad := range []certs.Options{
		{Agencies: -1},
		{Agencies: 1_000_000_000},
		{Agencies: 1, Validity: -time.Hour},
		{Agencies: 1, Hosts: []string{"a,b"}},
	} {
		d := t.TempDir()
		if _, err := certs.Generate(d, bad); err == nil {
			t.Errorf("Generate(%+v) succeeded", bad)
		}
		if m := snapshot(t, d); len(m) != 0 {
			t.Errorf("Generate(%+v) wrote %d files", bad, len(m))
		}
	}
}

// TestGenerateExisting covers a second run over a directory.
func TestGenerateExisting(t *testing.T) {
	later := t0.Add(30 * 24 * time.Hour)
	tests := []struct {
		name string
		// prepare the directory after a first Generate of 3 agencies at t0
		prepare func(t *testing.T, dir string)
		opts    certs.Options
		// wantErr: substrings of the error, and nothing may change; else
		// wantWritten are the names the run must write (all else unchanged).
		wantErr     []string
		wantWritten []string
	}{
		{name: "same again keeps everything", opts: certs.Options{Agencies: 3, Now: clock(later)}},
		{name: "fewer agencies keeps everything", opts: certs.Options{Agencies: 1, Now: clock(later)}},
		{name: "more agencies issues only the new ones", opts: certs.Options{Agencies: 5, Now: clock(later)},
			wantWritten: []string{"agency-4-key.pem", "agency-4.pem", "agency-5-key.pem", "agency-5.pem"}},
		{name: "a removed pair is issued again",
			prepare: func(t *testing.T, dir string) { remove(t, dir, "agency-2.pem", "agency-2-key.pem") },
			opts:    certs.Options{Agencies: 3, Now: clock(later)}, wantWritten: []string{"agency-2-key.pem", "agency-2.pem"}},
		{name: "a removed central is issued again",
			prepare: func(t *testing.T, dir string) { remove(t, dir, "central.pem", "central-key.pem") },
			opts:    certs.Options{Agencies: 3, Hosts: []string{"other"}, Now: clock(later)}, wantWritten: []string{"central-key.pem", "central.pem"}},
		{name: "same hosts given keep the central", opts: certs.Options{Agencies: 3, Hosts: []string{"::1", "LOCALHOST", "127.0.0.1", "central", "server"}, Now: clock(later)}},
		{name: "other hosts given", opts: certs.Options{Agencies: 3, Hosts: []string{"central.example"}, Now: clock(later)},
			wantErr: []string{"central.pem is for hosts server,central,localhost,127.0.0.1,::1, not the requested central.example", "remove central.pem and central-key.pem"}},
		{name: "force starts over", opts: certs.Options{Agencies: 3, Force: true, Now: clock(later)},
			wantWritten: names(3)},
		{name: "a certificate without its key",
			prepare: func(t *testing.T, dir string) { remove(t, dir, "agency-2-key.pem") },
			opts:    certs.Options{Agencies: 4, Now: clock(later)}, wantErr: []string{"agency-2.pem exists without its other file"}},
		{name: "the CA without its key",
			prepare: func(t *testing.T, dir string) { remove(t, dir, "ca-key.pem") },
			opts:    certs.Options{Agencies: 3, Now: clock(later)}, wantErr: []string{"only", "ca.pem", "of the CA's two files", "--force"}},
		{name: "certificates without a CA",
			prepare: func(t *testing.T, dir string) { remove(t, dir, "ca.pem", "ca-key.pem") },
			opts:    certs.Options{Agencies: 3, Now: clock(later)}, wantErr: []string{"central.pem exists but there is no CA", "--force"}},
		{name: "an agency certificate from another CA",
			prepare: func(t *testing.T, dir string) {
				other := t.TempDir()
				if _, err := certs.Generate(other, certs.Options{Agencies: 2, Now: clock(t0)}); err != nil {
					t.Fatal(err)
				}
				for _, n := range []string{"agency-2.pem", "agency-2-key.pem"} {
					copyFile(t, filepath.Join(other, n), filepath.Join(dir, n))
				}
			},
			opts: certs.Options{Agencies: 4, Now: clock(later)}, wantErr: []string{"agency-2.pem does not verify against ca.pem", "unknown authority"}},
		{name: "an agency certificate under another agency's name",
			prepare: func(t *testing.T, dir string) {
				copyFile(t, filepath.Join(dir, "agency-1.pem"), filepath.Join(dir, "agency-2.pem"))
				copyFile(t, filepath.Join(dir, "agency-1-key.pem"), filepath.Join(dir, "agency-2-key.pem"))
			},
			opts: certs.Options{Agencies: 3, Now: clock(later)}, wantErr: []string{"agency-2.pem names agency 1, not 2"}},
		{name: "a key that is not the certificate's",
			prepare: func(t *testing.T, dir string) {
				copyFile(t, filepath.Join(dir, "agency-1-key.pem"), filepath.Join(dir, "agency-3-key.pem"))
			},
			opts: certs.Options{Agencies: 3, Now: clock(later)}, wantErr: []string{"agency-3-key.pem is not the key of", "agency-3.pem"}},
		{name: "the CA has expired", opts: certs.Options{Agencies: 4, Now: clock(t0.Add(400 * 24 * time.Hour))},
			wantErr: []string{"the CA", "ca.pem expired on " + t0.Add(365*24*time.Hour).Format(time.RFC3339), "--force"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if _, err := certs.Generate(dir, certs.Options{Agencies: 3, Now: clock(t0)}); err != nil {
				t.Fatal(err)
			}
			if tt.prepare != nil {
				tt.prepare(t, dir)
			}
			before := snapshot(t, dir)
			b, err := certs.Generate(dir, tt.opts)
			after := snapshot(t, dir)
			if tt.wantErr != nil {
				if err == nil {
					t.Fatal("no error")
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not say %q", err, w)
					}
				}
				if !maps.Equal(before, after) {
					t.Error("a refused run changed the directory")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var written []string
			for n, content := range after {
				if before[n] != content {
					written = append(written, n)
				}
			}
			slices.Sort(written)
			want := slices.Clone(tt.wantWritten)
			slices.Sort(want)
			if !slices.Equal(written, want) {
				t.Errorf("changed files %q, want %q", written, want)
			}
			var reported []string
			for _, p := range b.Written {
				reported = append(reported, filepath.Base(p))
			}
			slices.Sort(reported)
			if !slices.Equal(reported, want) {
				t.Errorf("Bundle.Written %q, want %q", reported, want)
			}
			// Everything the run left for agencies 1..N verifies against
			// the CA that is there now.
			ca := readCert(t, dir, "ca.pem")
			roots := x509.NewCertPool()
			roots.AddCert(ca)
			for i := 1; i <= tt.opts.Agencies; i++ {
				c := readCert(t, dir, fmt.Sprintf("agency-%d.pem", i))
				if _, err := c.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: later, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
					t.Errorf("agency-%d.pem: %v", i, err)
				}
				// New certificates from the old CA end when it does.
				if !tt.opts.Force && c.NotAfter.After(ca.NotAfter) {
					t.Errorf("agency-%d.pem ends %s, after its CA (%s)", i, c.NotAfter, ca.NotAfter)
				}
			}
		})
	}
}

func TestGenerateClampsToTheCA(t *testing.T) {
	dir := t.TempDir()
	if _, err := certs.Generate(dir, certs.Options{Agencies: 1, Validity: 10 * 24 * time.Hour, Now: clock(t0)}); err != nil {
		t.Fatal(err)
	}
	if _, err := certs.Generate(dir, certs.Options{Agencies: 2, Validity: 365 * 24 * time.Hour, Now: clock(t0.Add(24 * time.Hour))}); err != nil {
		t.Fatal(err)
	}
	if got, want := readCert(t, dir, "agency-2.pem").NotAfter, t0.Add(10*24*time.Hour); !got.Equal(want) {
		t.Errorf("agency-2.pem ends %s, want the CA's end %s", got, want)
	}
}

func remove(t *testing.T, dir string, names ...string) {
	t.Helper()
	for _, n := range names {
		if err := os.Remove(filepath.Join(dir, n)); err != nil {
			t.Fatal(err)
		}
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
