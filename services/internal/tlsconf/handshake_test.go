package tlsconf_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/loteria/loteria/services/internal/certs"
	"github.com/loteria/loteria/services/internal/certs/certstest"
	"github.com/loteria/loteria/services/internal/tlsconf"
)

// fixture is a directory of certificate files: the CA both sides trust,
// another CA, and certificates good and bad.
type fixture struct {
	ca, otherCA *certs.Pair
	caFile      string                 // ca's certificate
	files       map[string]certs.Files // by name
	pairs       map[string]*certs.Pair
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	f := &fixture{ca: certstest.CA(t), otherCA: certstest.CA(t), files: map[string]certs.Files{}, pairs: map[string]*certs.Pair{}}
	f.caFile = certstest.Write(t, dir, "ca", f.ca).Cert
	past := time.Now().Add(-48 * time.Hour)
	for name, p := range map[string]*certs.Pair{
		"central":          certstest.Central(t, f.ca, "localhost", "127.0.0.1", "::1"),
		"central-named":    certstest.Central(t, f.ca, "central"),
		"central-wrong":    certstest.Central(t, f.ca, "elsewhere.example"),
		"central-expired":  certstest.Issue(t, f.ca, certs.Spec{Hosts: []string{"127.0.0.1"}, NotBefore: past, NotAfter: past.Add(time.Hour)}),
		"central-other-ca": certstest.Central(t, f.otherCA, "127.0.0.1"),
		"central-no-usage": certstest.Issue(t, f.ca, certs.Spec{Hosts: []string{"127.0.0.1"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}),
		"agency-7":         certstest.Agency(t, f.ca, 7),
		"agency-expired":   certstest.Issue(t, f.ca, certs.Spec{Agency: 3, NotBefore: past, NotAfter: past.Add(time.Hour)}),
		"agency-other-ca":  certstest.Agency(t, f.otherCA, 4),
		"agency-no-id":     certstest.Issue(t, f.ca, certs.Spec{ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}),
		"agency-two-ids":   certstest.Issue(t, f.ca, certs.Spec{Agency: 5, URIs: []*url.URL{certstest.URI(t, "urn:loteria:agency:6")}}),
	} {
		f.pairs[name] = p
		f.files[name] = certstest.Write(t, dir, name, p)
	}
	return f
}

// server is the central's side of the test: ServerConfig from the files.
func (f *fixture) server(t *testing.T, name string) *tls.Config {
	t.Helper()
	cfg, err := tlsconf.ServerConfig(f.files[name].Cert, f.files[name].Key, f.caFile)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// client is an agency's side: ClientConfig from the files.
func (f *fixture) client(t *testing.T, name, serverName string) *tls.Config {
	t.Helper()
	cfg, err := tlsconf.ClientConfig(f.files[name].Cert, f.files[name].Key, f.caFile, serverName)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// swap replaces a configuration's certificate with p, one the Config
// functions would refuse to load (expired, no identity, wrong usage), to
// see what the peer makes of it.
func swap(t *testing.T, cfg *tls.Config, p *certs.Pair) *tls.Config {
	t.Helper()
	key, err := p.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(p.CertPEM(), key)
	if err != nil {
		t.Fatal(err)
	}
	cfg = cfg.Clone()
	cfg.Certificates = []tls.Certificate{pair}
	return cfg
}

// result is what the central's side of one connection saw.
type result struct {
	err    error
	agency int
	vers   uint16
}

// serve accepts one connection on a loopback port and runs the server
// handshake on it under ctx; on success it writes "ok". It returns the
// address and a channel with the outcome.
func serve(t *testing.T, ctx context.Context, cfg *tls.Config) (string, <-chan result) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	out := make(chan result, 1)
	go func() {
		raw, err := ln.Accept()
		if err != nil {
			out <- result{err: err}
			return
		}
		defer raw.Close()
		tc := tls.Server(raw, cfg)
		var r result
		if r.err = tc.HandshakeContext(ctx); r.err == nil {
			cs := tc.ConnectionState()
			r.vers = cs.Version
			r.agency, r.err = tlsconf.PeerAgency(cs)
			if _, err := tc.Write([]byte("ok")); err != nil && r.err == nil {
				r.err = err
			}
		}
		out <- r
		// Half-close and wait for the peer's close, so the peer reads our
		// alert or "ok" rather than a reset caused by its unread bytes.
		if tcp, ok := raw.(*net.TCPConn); ok {
			tcp.CloseWrite()
		}
		raw.SetReadDeadline(time.Now().Add(10 * time.Second))
		io.Copy(io.Discard, raw)
	}()
	return ln.Addr().String(), out
}

// tlsClient dials addr with cfg and reads the server's "ok": in TLS 1.3 a
// client learns that the server refused its certificate only on reading.
func tlsClient(cfg *tls.Config) func(ctx context.Context, addr string) error {
	return func(ctx context.Context, addr string) error {
		d := tls.Dialer{Config: cfg}
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 2)
		if _, err := io.ReadFull(c, buf); err != nil {
			return err
		}
		if string(buf) != "ok" {
			return errors.New("server wrote something other than ok")
		}
		return nil
	}
}

// rawClient connects over plain TCP, writes w (if any) and reads until
// the server closes.
func rawClient(w string, closeAtOnce bool) func(ctx context.Context, addr string) error {
	return func(ctx context.Context, addr string) error {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		if closeAtOnce {
			return nil
		}
		if w != "" {
			if _, err := io.WriteString(c, w); err != nil {
				return err
			}
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err = io.Copy(io.Discard, c)
		return err
	}
}

const unchecked = "-"

func TestHandshakes(t *testing.T) {
	f := newFixture(t)
	tls12 := func(cfg *tls.Config) *tls.Config {
		cfg = cfg.Clone()
		cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
		return cfg
	}
	noCert := func(cfg *tls.Config) *tls.Config {
		cfg = cfg.Clone()
		cfg.Certificates = nil
		return cfg
	}
	otherRoots := func(cfg *tls.Config) *tls.Config {
		cfg = cfg.Clone()
		cfg.RootCAs = x509.NewCertPool()
		cfg.RootCAs.AddCert(f.otherCA.Cert)
		return cfg
	}

	tests := []struct {
		name   string
		server *tls.Config
		client func(ctx context.Context, addr string) error
		// serverCtx bounds the server's handshake (10 s when nil).
		serverCtx func() (context.Context, context.CancelFunc)
		// What each side's error says (HandshakeReason): "" for success,
		// unchecked where that side's view does not matter.
		wantServer, wantClient string
		wantAgency             int
	}{
		{name: "good", server: f.server(t, "central"), client: tlsClient(f.client(t, "agency-7", "")),
			wantAgency: 7},
		{name: "good, server name overrides the dialled host", server: f.server(t, "central-named"),
			client: tlsClient(f.client(t, "agency-7", "central")), wantAgency: 7},
		{name: "agency certificate expired", server: f.server(t, "central"),
			client:     tlsClient(swap(t, f.client(t, "agency-7", ""), f.pairs["agency-expired"])),
			wantServer: tlsconf.ReasonExpired, wantClient: tlsconf.ReasonPeerRefused},
		{name: "agency certificate from another CA", server: f.server(t, "central"),
			client:     tlsClient(f.client(t, "agency-other-ca", "")),
			wantServer: tlsconf.ReasonUnknownCA, wantClient: tlsconf.ReasonPeerRefused},
		{name: "no client certificate", server: f.server(t, "central"),
			client:     tlsClient(noCert(f.client(t, "agency-7", ""))),
			wantServer: tlsconf.ReasonNoCertificate, wantClient: tlsconf.ReasonPeerRefused},
		{name: "agency certificate names no agency", server: f.server(t, "central"),
			client:     tlsClient(swap(t, f.client(t, "agency-7", ""), f.pairs["agency-no-id"])),
			wantServer: tlsconf.ReasonBadIdentity, wantClient: tlsconf.ReasonPeerRefused},
		{name: "agency certificate names two agencies", server: f.server(t, "central"),
			client:     tlsClient(swap(t, f.client(t, "agency-7", ""), f.pairs["agency-two-ids"])),
			wantServer: tlsconf.ReasonBadIdentity, wantClient: tlsconf.ReasonPeerRefused},
		{name: "central certificate used by an agency", server: f.server(t, "central"),
			client:     tlsClient(swap(t, f.client(t, "agency-7", ""), f.pairs["central"])),
			wantServer: tlsconf.ReasonBadCertificate, wantClient: tlsconf.ReasonPeerRefused},
		{name: "central certificate for another host", server: f.server(t, "central-wrong"),
			client:     tlsClient(f.client(t, "agency-7", "")),
			wantServer: tlsconf.ReasonPeerRefused, wantClient: tlsconf.ReasonWrongHost},
		{name: "central certificate expired", server: swap(t, f.server(t, "central"), f.pairs["central-expired"]),
			client:     tlsClient(f.client(t, "agency-7", "")),
			wantServer: tlsconf.ReasonPeerRefused, wantClient: tlsconf.ReasonExpired},
		{name: "central certificate from another CA", server: f.server(t, "central-other-ca"),
			client:     tlsClient(f.client(t, "agency-7", "")),
			wantServer: tlsconf.ReasonPeerRefused, wantClient: tlsconf.ReasonUnknownCA},
		{name: "agency trusts another CA", server: f.server(t, "central"),
			client:     tlsClient(otherRoots(f.client(t, "agency-7", ""))),
			wantServer: tlsconf.ReasonPeerRefused, wantClient: tlsconf.ReasonUnknownCA},
		{name: "central certificate not for serving", server: swap(t, f.server(t, "central"), f.pairs["central-no-usage"]),
			client:     tlsClient(f.client(t, "agency-7", "")),
			wantServer: tlsconf.ReasonPeerRefused, wantClient: tlsconf.ReasonBadCertificate},
		{name: "TLS 1.2-only client", server: f.server(t, "central"),
			client:     tlsClient(tls12(f.client(t, "agency-7", ""))),
			wantServer: tlsconf.ReasonProtocolVersion, wantClient: tlsconf.ReasonProtocolVersion},
		{name: "plaintext seed client on the TLS port", server: f.server(t, "central"),
			client:     rawClient("00000003END", false),
			wantServer: tlsconf.ReasonNotTLS, wantClient: unchecked},
		{name: "plaintext HTTP client on the TLS port", server: f.server(t, "central"),
			client:     rawClient("GET / HTTP/1.1\r\nHost: x\r\n\r\n", false),
			wantServer: tlsconf.ReasonNotTLS, wantClient: unchecked},
		{name: "client says nothing", server: f.server(t, "central"),
			client: rawClient("", false),
			serverCtx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 200*time.Millisecond)
			},
			wantServer: tlsconf.ReasonTimeout, wantClient: unchecked},
		{name: "client closes at once (a port probe)", server: f.server(t, "central"),
			client:     rawClient("", true),
			wantServer: tlsconf.ReasonClosed, wantClient: unchecked},
		{name: "central shutting down", server: f.server(t, "central"),
			client: rawClient("", false),
			serverCtx: func() (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				return ctx, cancel
			},
			wantServer: tlsconf.ReasonCanceled, wantClient: unchecked},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mk := tt.serverCtx
			if mk == nil {
				mk = func() (context.Context, context.CancelFunc) {
					return context.WithTimeout(context.Background(), 10*time.Second)
				}
			}
			sctx, cancel := mk()
			defer cancel()
			addr, srv := serve(t, sctx, tt.server)
			ctx, cancelClient := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancelClient()
			clientErr := tt.client(ctx, addr)
			var r result
			select {
			case r = <-srv:
			case <-ctx.Done():
				t.Fatal("the server side never finished")
			}

			t.Logf("server: %v; client: %v", r.err, clientErr)
			if got := tlsconf.HandshakeReason(r.err); got != tt.wantServer {
				t.Errorf("server: reason %q, want %q (error: %v)", got, tt.wantServer, r.err)
			}
			if tt.wantClient != unchecked {
				if got := tlsconf.HandshakeReason(clientErr); got != tt.wantClient {
					t.Errorf("client: reason %q, want %q (error: %v)", got, tt.wantClient, clientErr)
				}
			}
			if tt.wantServer == "" {
				if r.agency != tt.wantAgency {
					t.Errorf("agency %d, want %d", r.agency, tt.wantAgency)
				}
				if r.vers != tls.VersionTLS13 {
					t.Errorf("TLS version %#x, want TLS 1.3 (%#x)", r.vers, tls.VersionTLS13)
				}
			}
		})
	}
}
