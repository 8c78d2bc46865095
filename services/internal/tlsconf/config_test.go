package tlsconf_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loteria/loteria/services/internal/certs"
	"github.com/loteria/loteria/services/internal/certs/certstest"
	"github.com/loteria/loteria/services/internal/tlsconf"
)

func TestConfigs(t *testing.T) {
	dir := t.TempDir()
	ca := certstest.CA(t)
	caFile := certstest.Write(t, dir, "ca", ca).Cert
	central := certstest.Write(t, dir, "central", certstest.Central(t, ca, "central"))
	agency := certstest.Write(t, dir, "agency-3", certstest.Agency(t, ca, 3))

	srv, err := tlsconf.ServerConfig(central.Cert, central.Key, caFile)
	if err != nil {
		t.Fatal(err)
	}
	if srv.MinVersion != tls.VersionTLS13 {
		t.Errorf("server MinVersion %#x, want TLS 1.3", srv.MinVersion)
	}
	if srv.ClientAuth != tls.RequireAndVerifyClientCert {
		t.Errorf("server ClientAuth %v, want RequireAndVerifyClientCert", srv.ClientAuth)
	}
	if len(srv.Certificates) != 1 || srv.Certificates[0].Leaf == nil || srv.Certificates[0].Leaf.DNSNames[0] != "central" {
		t.Errorf("server certificate is not central.pem's")
	}

	for _, name := range []string{"", "central"} {
		cli, err := tlsconf.ClientConfig(agency.Cert, agency.Key, caFile, name)
		if err != nil {
			t.Fatal(err)
		}
		if cli.MinVersion != tls.VersionTLS13 || cli.ServerName != name || cli.RootCAs == nil || cli.InsecureSkipVerify {
			t.Errorf("client config: MinVersion %#x ServerName %q RootCAs %v InsecureSkipVerify %v",
				cli.MinVersion, cli.ServerName, cli.RootCAs != nil, cli.InsecureSkipVerify)
		}
		if id, err := tlsconf.AgencyID(cli.Certificates[0].Leaf); err != nil || id != 3 {
			t.Errorf("client certificate names agency %d (%v), want 3", id, err)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	ca := certstest.CA(t)
	caFiles := certstest.Write(t, dir, "ca", ca)
	central := certstest.Write(t, dir, "central", certstest.Central(t, ca, "central"))
	agency := certstest.Write(t, dir, "agency-3", certstest.Agency(t, ca, 3))
	past := time.Now().Add(-72 * time.Hour)
	future := time.Now().Add(72 * time.Hour)
	expired := certstest.Write(t, dir, "expired", certstest.Issue(t, ca, certs.Spec{Hosts: []string{"central"}, NotBefore: past, NotAfter: past.Add(time.Hour)}))
	early := certstest.Write(t, dir, "early", certstest.Issue(t, ca, certs.Spec{Hosts: []string{"central"}, NotBefore: future, NotAfter: future.Add(time.Hour)}))
	noID := certstest.Write(t, dir, "no-id", certstest.Issue(t, ca, certs.Spec{ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}))
	oldCA, err := certs.NewCA(certs.Spec{CommonName: "old", NotBefore: past, NotAfter: past.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	expiredCA := certstest.Write(t, dir, "old-ca", oldCA).Cert
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	garbage := write("garbage.pem", "not a certificate\n")
	badBlock := write("bad-block.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("nonsense")})))
	missing := filepath.Join(dir, "missing.pem")

	const server, client = "server", "client"
	tests := []struct {
		name              string
		side              string
		cert, key, caFile string
		want              []string // substrings of the error
	}{
		{"certificate missing", server, missing, central.Key, caFiles.Cert, []string{"reading the central certificate", missing, "no such file"}},
		{"key missing", server, central.Cert, missing, caFiles.Cert, []string{"reading the central key", missing}},
		{"CA missing", server, central.Cert, central.Key, missing, []string{"reading the CA certificate", missing}},
		{"key given as certificate", server, central.Key, central.Key, caFiles.Cert, []string{central.Key, "no PEM CERTIFICATE block", "PRIVATE KEY", "key file?"}},
		{"certificate given as key", server, central.Cert, central.Cert, caFiles.Cert, []string{"central key " + central.Cert, "no PEM private key block"}},
		{"certificate not PEM", server, garbage, central.Key, caFiles.Cert, []string{garbage, "not a PEM certificate"}},
		{"certificate block corrupt", server, badBlock, central.Key, caFiles.Cert, []string{badBlock, "PEM block 1 is not a valid X.509 certificate"}},
		{"key of another certificate", server, central.Cert, agency.Key, caFiles.Cert, []string{agency.Key, "does not belong to certificate " + central.Cert}},
		{"certificate expired", server, expired.Cert, expired.Key, caFiles.Cert, []string{expired.Cert, "expired on " + past.Add(time.Hour).UTC().Format(time.RFC3339)}},
		{"certificate not yet valid", server, early.Cert, early.Key, caFiles.Cert, []string{early.Cert, "not valid before", "clock"}},
		{"CA certificate as the central's", server, caFiles.Cert, caFiles.Key, caFiles.Cert, []string{caFiles.Cert, "is a CA certificate"}},
		{"agency certificate as the central's", server, agency.Cert, agency.Key, caFiles.Cert, []string{agency.Cert, "not issued for a TLS server", "serverAuth"}},
		{"central certificate as the CA", server, central.Cert, central.Key, central.Cert, []string{"CA certificate " + central.Cert, "not a CA certificate", "ca.pem"}},
		{"CA expired", server, central.Cert, central.Key, expiredCA, []string{expiredCA, "expired on"}},
		{"CA not PEM", client, agency.Cert, agency.Key, garbage, []string{"CA certificate " + garbage, "not a PEM certificate"}},
		{"central certificate as an agency's", client, central.Cert, central.Key, caFiles.Cert, []string{"agency certificate " + central.Cert, "not issued for a TLS client", "clientAuth"}},
		{"agency certificate naming no agency", client, noID.Cert, noID.Key, caFiles.Cert, []string{noID.Cert, "no URI SAN urn:loteria:agency:<id>"}},
		{"agency key missing", client, agency.Cert, missing, caFiles.Cert, []string{"reading the agency key", missing}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.side == server {
				_, err = tlsconf.ServerConfig(tt.cert, tt.key, tt.caFile)
			} else {
				_, err = tlsconf.ClientConfig(tt.cert, tt.key, tt.caFile, "")
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}
