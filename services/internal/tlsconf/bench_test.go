package tlsconf_test

import (
	"context"
	"crypto/tls"
	"net"
	"testing"

	"github.com/loteria/loteria/services/internal/certs/certstest"
	"github.com/loteria/loteria/services/internal/tlsconf"
)

// BenchmarkHandshake is one full mutual TLS 1.3 handshake over loopback
// TCP with the configurations from the files, both sides in this process
// (so the time is the central's and the agency's CPU together, plus the
// round trips), and the agency id read from the certificate.
func BenchmarkHandshake(b *testing.B) {
	dir := b.TempDir()
	ca := certstest.CA(b)
	caFile := certstest.Write(b, dir, "ca", ca).Cert
	central := certstest.Write(b, dir, "central", certstest.Central(b, ca, "127.0.0.1"))
	agency := certstest.Write(b, dir, "agency-1", certstest.Agency(b, ca, 1))
	srv, err := tlsconf.ServerConfig(central.Cert, central.Key, caFile)
	if err != nil {
		b.Fatal(err)
	}
	cli, err := tlsconf.ClientConfig(agency.Cert, agency.Key, caFile, "")
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	errs := make(chan error, 1)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tc := tls.Server(c, srv)
			err = tc.HandshakeContext(context.Background())
			if err == nil {
				_, err = tlsconf.PeerAgency(tc.ConnectionState())
			}
			if err == nil {
				_, err = tc.Write([]byte{1})
			}
			tc.Close()
			errs <- err
		}
	}()
	d := tls.Dialer{Config: cli}
	addr := ln.Addr().String()
	buf := make([]byte, 1)
	b.ReportAllocs()
	for b.Loop() {
		c, err := d.DialContext(context.Background(), "tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Read(buf); err != nil {
			b.Fatal(err)
		}
		c.Close()
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
	}
}
