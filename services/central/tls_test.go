package central_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/loteria/loteria/internal/testenv"
	"github.com/loteria/loteria/services/agency"
	"github.com/loteria/loteria/services/central"
	"github.com/loteria/loteria/services/internal/certs"
	"github.com/loteria/loteria/services/internal/certs/certstest"
	"github.com/loteria/loteria/services/internal/lottery"
	"github.com/loteria/loteria/services/internal/tlsconf"
	"github.com/loteria/loteria/services/internal/wire"
)

// pki is a CA, a central certificate for 127.0.0.1 and the files.
type pki struct {
	dir    string
	ca     *certs.Pair
	caFile string
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	dir := t.TempDir()
	ca := certstest.CA(t)
	return &pki{dir: dir, ca: ca, caFile: certstest.Write(t, dir, "ca", ca).Cert}
}

// startTLSCentral runs a central with only its mutual-TLS listener.
func startTLSCentral(t *testing.T, p *pki, cfg central.Config, opt ...harnessOpt) *harness {
	t.Helper()
	f := certstest.Write(t, p.dir, "central", certstest.Central(t, p.ca, "127.0.0.1"))
	tc, err := tlsconf.ServerConfig(f.Cert, f.Key, p.caFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Address, cfg.TLSAddress = "", "127.0.0.1:0"
	cfg.TLS, cfg.HandshakeReason, cfg.HandshakeReasons = tc, tlsconf.HandshakeReason, tlsconf.Reasons()
	if cfg.AgencyID == nil {
		cfg.AgencyID = tlsconf.PeerAgency
	}
	return startCentral(t, cfg, opt...)
}

// dialTLS connects as the holder of pair (an agency certificate), trusting
// caFile, checking the central's name as serverName.
func dialTLS(t *testing.T, addr string, p *pki, name string, pair *certs.Pair, caFile, serverName string) (*rawConn, error) {
	t.Helper()
	// The config is built by hand, not with tlsconf.ClientConfig, which
	// refuses a bad certificate before dialling: an attacker would not.
	f := certstest.Write(t, p.dir, name, pair)
	cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pem, err := os.ReadFile(caFile)
	if err != nil || !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("CA %s: %v", caFile, err)
	}
	cc := &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}, RootCAs: pool, ServerName: serverName}
	d := tls.Dialer{Config: cc, NetDialer: &net.Dialer{Timeout: 5 * time.Second}}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	return newRawConn(t, nc), nil
}

// TestMutualTLSIdentity: the agency id is the certificate's; a batch or a
// HELLO for any other agency is refused; winners go to that agency only.
func TestMutualTLSIdentity(t *testing.T) {
	p := newPKI(t)
	h := startTLSCentral(t, p, central.Config{Agencies: 2})
	a1, err := dialTLS(t, h.addr, p, "agency-1", certstest.Agency(t, p.ca, 1), p.caFile, "")
	if err != nil {
		t.Fatal(err)
	}
	a1.send("2;1\nAna;Pérez;1;1990-01-01;7574\n")
	if msg := a1.expectCode(wire.CodeAgency); !strings.Contains(msg, "agency 2") {
		t.Errorf("refusal %q does not say which agency", msg)
	}
	a1.send("1;1\nAna;Pérez;1;1990-01-01;7574\n")
	a1.expect(wire.AckSuccess)
	a1.send("END")

	a2, err := dialTLS(t, h.addr, p, "agency-2", certstest.Agency(t, p.ca, 2), p.caFile, "")
	if err != nil {
		t.Fatal(err)
	}
	a2.send(string(wire.AppendHello(nil, wire.Hello{Version: 1, Agency: 1, Fingerprint: "aa", Total: -1})))
	a2.expectCode(wire.CodeAgency)
	a2.expectClosed()
	a2, err = dialTLS(t, h.addr, p, "agency-2b", certstest.Agency(t, p.ca, 2), p.caFile, "")
	if err != nil {
		t.Fatal(err)
	}
	a2.hello(2, "bb", 0)
	a2.send("END")
	a1.expect("1")
	if w := a2.winners(); len(w.DNIs) != 0 {
		t.Errorf("agency 2 got winners %v, want none", w.DNIs)
	}
}

// TestMutualTLSRefusals: certificates that are expired, from another CA,
// for no agency of this central, or a central certificate for another
// host are refused with the reason in a metric.
func TestMutualTLSRefusals(t *testing.T) {
	p := newPKI(t)
	h := startTLSCentral(t, p, central.Config{Agencies: 2})
	other := certstest.CA(t)
	otherCAFile := certstest.Write(t, p.dir, "other-ca", other).Cert
	now := time.Now()
	cases := []struct {
		name, reason string
		pair         *certs.Pair
		caFile       string
		serverName   string
	}{
		{"expired", "expired", certstest.Issue(t, p.ca, certs.Spec{CommonName: "old", Agency: 1, NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-time.Hour)}), p.caFile, ""},
		{"another CA", "unknown_ca", certstest.Agency(t, other, 1), p.caFile, ""},
		{"agency out of range", "bad_identity", certstest.Agency(t, p.ca, 9), p.caFile, ""},
		{"central for another host", "peer_refused", certstest.Agency(t, p.ca, 1), p.caFile, "central.example"},
		{"agency does not trust the central", "peer_refused", certstest.Agency(t, p.ca, 1), otherCAFile, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := testutil.ToFloat64(counterWith(t, h.reg, "loteria_tls_handshake_errors_total", "reason", tc.reason))
			c, err := dialTLS(t, h.addr, p, strings.ReplaceAll(tc.name, " ", "-"), tc.pair, tc.caFile, tc.serverName)
			if err == nil {
				// TLS 1.3: the client's handshake ends before the server
				// has judged its certificate; the refusal is its first read.
				c.send("1;0\n")
				if p, err := wire.ReadFrame(c.br, nil, 1<<16); err == nil && !strings.HasPrefix(string(p), "error;") {
					t.Fatalf("a refused certificate got the answer %q", p)
				}
			}
			testenv.Eventually(t, 5*time.Second, "the refusal to be counted as "+tc.reason, func() bool {
				return testutil.ToFloat64(counterWith(t, h.reg, "loteria_tls_handshake_errors_total", "reason", tc.reason)) == before+1
			})
		})
	}
}

// TestNewerTLSConnectionReplacesOlder: under TLS the newer, authenticated
// connection of an agency takes over from one that may be dead.
func TestNewerTLSConnectionReplacesOlder(t *testing.T) {
	p := newPKI(t)
	h := startTLSCentral(t, p, central.Config{Agencies: 1})
	pair := certstest.Agency(t, p.ca, 1)
	old, err := dialTLS(t, h.addr, p, "old", pair, p.caFile, "")
	if err != nil {
		t.Fatal(err)
	}
	old.hello(1, "cc", 0)
	fresh, err := dialTLS(t, h.addr, p, "new", pair, p.caFile, "")
	if err != nil {
		t.Fatal(err)
	}
	fresh.hello(1, "cc", 0)
	old.expectClosed()
	fresh.send(batchFrom(1, 0, 2, nil))
	fresh.expect(wire.AckSuccess)
	testenv.Eventually(t, 5*time.Second, "the replacement to be counted", func() bool {
		return testutil.ToFloat64(counterWith(t, h.reg, "loteria_connections_replaced_total", "", "")) == 1
	})
}

// TestOfficialDataOverMutualTLS runs the five agencies with the real client
// over mutual TLS, each with its own certificate: every agency gets its
// own winners and the store holds every bet once.
func TestOfficialDataOverMutualTLS(t *testing.T) {
	dir := dataDir(t)
	p := newPKI(t)
	h := startTLSCentral(t, p, central.Config{Agencies: 5})
	var wg sync.WaitGroup
	results := make([]agency.Result, 6)
	errs := make([]error, 6)
	for i := 1; i <= 5; i++ {
		f := certstest.Write(t, p.dir, fmt.Sprintf("agency-%d", i), certstest.Agency(t, p.ca, i))
		cc, err := tlsconf.ClientConfig(f.Cert, f.Key, p.caFile, "")
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			s, err := agency.OpenFileStream(testenv.AgencyFile(dir, i), i)
			if err != nil {
				errs[i] = err
				return
			}
			c, err := agency.NewClient(agency.Options{Agency: i, Address: h.addr, MaxBets: 100, InFlight: 16,
				Timeout: 20 * time.Second, WinnersTimeout: time.Minute, TLS: cc}, agency.Deps{})
			if err != nil {
				errs[i] = err
				return
			}
			results[i], errs[i] = c.Run(t.Context(), s)
		})
	}
	wg.Wait()
	for i := 1; i <= 5; i++ {
		if errs[i] != nil {
			t.Fatalf("agency %d: %v", i, errs[i])
		}
		want := testenv.Winners(testenv.ReadAgencyFile(t, testenv.AgencyFile(dir, i), i))
		if got := results[i].Winners; !slices.Equal(got, want) {
			t.Errorf("agency %d winners %v, want %v", i, got, want)
		}
	}
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	stored := testenv.ByAgency(testenv.ReadStore(t, h.store))
	for i := 1; i <= 5; i++ {
		if want := testenv.ReadAgencyFile(t, testenv.AgencyFile(dir, i), i); !slices.Equal(stored[i], want) {
			t.Errorf("agency %d: store holds %d bets, want its %d once each", i, len(stored[i]), len(want))
		}
	}
}

// TestTLSAgencyEvictsAnUnnamedConnection: the connection cap counts both
// listeners, so an agency with its certificate takes the place of a peer
// that connected and never finished its handshake, rather than being cut
// off (helper-27: 40 such peers under MAX_CONNECTIONS=40 locked out a
// valid agency-3 certificate).
func TestTLSAgencyEvictsAnUnnamedConnection(t *testing.T) {
	p := newPKI(t)
	h := startTLSCentral(t, p, central.Config{Agencies: 1, MaxConnections: 1, HandshakeTimeout: time.Minute})
	squatter := dialRaw(t, h.addr) // TCP only: no handshake, no agency
	testenv.Eventually(t, 5*time.Second, "the squatter to be served", func() bool {
		return testutil.ToFloat64(counterWith(t, h.reg, "loteria_agencies_connected", "", "")) == 1
	})
	a1, err := dialTLS(t, h.addr, p, "agency-1", certstest.Agency(t, p.ca, 1), p.caFile, "")
	if err != nil {
		t.Fatal(err)
	}
	a1.send("1;1\nAna;Pérez;1;1990-01-01;7574\n")
	a1.expect(wire.AckSuccess)
	squatter.expectClosed()
	testenv.Eventually(t, 5*time.Second, "the squatter's eviction to be counted", func() bool {
		return testutil.ToFloat64(counterWith(t, h.reg, "loteria_connections_closed_total", "reason", "evicted")) == 1
	})
}

// TestTLSReplacementWhileTheOlderPipelines: connections of one agency's
// certificate, one after another, each sending batches back to back, so
// every newer one replaces an older that is still taking batches in. The
// newer waits for the older to finish; that wait once watched the older's
// ack WaitGroup while the older's reader kept adding to it, and the
// central panicked ("WaitGroup is reused before previous Wait has
// returned"; helper-31's stress run: 7 runs of 7 under -race). After
// them, the agency's last connection is served.
func TestTLSReplacementWhileTheOlderPipelines(t *testing.T) {
	p := newPKI(t)
	h := startTLSCentral(t, p, central.Config{Agencies: 1})
	pair := certstest.Agency(t, p.ca, 1)
	frame := wire.AppendFrame(nil, []byte("1;100\n"+betLines(1, 0, 100, nil)))
	var wg sync.WaitGroup
	defer wg.Wait()
	// One config for every dial, so they follow each other closely.
	f := certstest.Write(t, p.dir, "agency-1", pair)
	cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if pem, err := os.ReadFile(p.caFile); err != nil || !roots.AppendCertsFromPEM(pem) {
		t.Fatalf("CA %s: %v", p.caFile, err)
	}
	cc := &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}, RootCAs: roots, ServerName: "127.0.0.1"}
	for range 150 {
		nc, err := tls.Dial("tcp", h.addr, cc)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		nc.SetDeadline(time.Now().Add(20 * time.Second))
		// Until the central closes it (replaced): batches back to back,
		// acks read and dropped.
		wg.Go(func() { io.Copy(io.Discard, nc) })
		wg.Go(func() {
			for {
				if _, err := nc.Write(frame); err != nil {
					nc.Close()
					return
				}
			}
		})
	}
	last, err := dialTLS(t, h.addr, p, "last", pair, p.caFile, "")
	if err != nil {
		t.Fatal(err)
	}
	last.hello(1, "cc", 0)
	last.send(batchFrom(1, 0, 2, nil))
	last.expect(wire.AckSuccess)
	testenv.Eventually(t, 10*time.Second, "150 replacements to be counted", func() bool {
		return testutil.ToFloat64(counterWith(t, h.reg, "loteria_connections_replaced_total", "", "")) >= 150
	})
}

// heldConn passes its first write (a TLS ClientHello) and holds every later
// one until flush, so the client's last handshake flight and its first
// records reach the central in one segment: the central's TLS layer reads
// them all while it finishes the handshake.
type heldConn struct {
	net.Conn
	writes int
	held   []byte
}

func (c *heldConn) Write(p []byte) (int, error) {
	c.writes++
	if c.writes == 1 {
		return c.Conn.Write(p)
	}
	c.held = append(c.held, p...)
	return len(p), nil
}

func (c *heldConn) flush() error {
	_, err := c.Conn.Write(c.held)
	c.held = nil
	return err
}

// TestTLSConnectionEvictedDuringItsHandshakeActsForNoAgency: a TLS
// connection evicted (the connection cap reached while it had not named its
// agency) between its handshake and its claim of the certificate's agency
// stores nothing, though its first batch already came in with the
// handshake. It once went on as that agency, out of the central's table of
// agencies, and stored the batch its TLS layer had buffered (helper-31,
// from reading the code).
func TestTLSConnectionEvictedDuringItsHandshakeActsForNoAgency(t *testing.T) {
	p := newPKI(t)
	gate, named := make(chan struct{}), make(chan struct{})
	var calls atomic.Int32
	cfg := central.Config{Agencies: 1, MaxConnections: 1, HandshakeTimeout: time.Minute}
	cfg.AgencyID = func(cs tls.ConnectionState) (int, error) {
		if calls.Add(1) == 1 { // only the first connection waits here
			named <- struct{}{}
			<-gate
		}
		return tlsconf.PeerAgency(cs)
	}
	h := startTLSCentral(t, p, cfg)

	f := certstest.Write(t, p.dir, "agency-1", certstest.Agency(t, p.ca, 1))
	cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pem, err := os.ReadFile(p.caFile)
	if err != nil || !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("CA %s: %v", p.caFile, err)
	}
	raw, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(20 * time.Second))
	hc := &heldConn{Conn: raw}
	tc := tls.Client(hc, &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}, RootCAs: pool, ServerName: "127.0.0.1"})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	if _, err := tc.Write(wire.AppendFrame(nil, []byte("1;1\nAna;Pérez;1;1990-01-01;7574\n"))); err != nil {
		t.Fatal(err)
	}
	if err := hc.flush(); err != nil {
		t.Fatal(err)
	}
	<-named // the central holds the handshake done, the agency not yet claimed

	// A second connection of the agency, at the cap, evicts the first,
	// which has named no agency yet: its socket is closed.
	second, err := dialTLS(t, h.addr, p, "agency-1b", certstest.Agency(t, p.ca, 1), p.caFile, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, raw); err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("the evicted connection's socket: %v", err)
	}
	close(gate)
	testenv.Eventually(t, 5*time.Second, "the evicted connection to end", func() bool {
		return testutil.ToFloat64(counterWith(t, h.reg, "loteria_connections_closed_total", "reason", "evicted")) == 1
	})
	second.send("1;1\nBeto;Gómez;2;1991-02-02;1\n")
	second.expect(wire.AckSuccess)
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	rows := testenv.ReadStore(t, h.store)
	if len(rows) != 1 || rows[0].First != "Beto" {
		t.Fatalf("the store holds %d rows, want only the second connection's bet: an evicted connection stored a batch", len(rows))
	}
}

// TestPlaintextAgencyAtTheTLSPortIsToldSo: an agency without TLS settings
// pointed at the TLS port used to meet a connection closed with nothing,
// retry for its whole retry budget, and end with "central closed the
// connection" (helper-35). The central now answers a plaintext frame
// there with a plaintext error that names the cause, and the agency stops
// at once with it. A raw peer sees the frame too.
func TestPlaintextAgencyAtTheTLSPortIsToldSo(t *testing.T) {
	h := startTLSCentral(t, newPKI(t), central.Config{Agencies: 1})

	raw := dialRaw(t, h.addr)
	raw.send("1;1\nAna;Pérez;111;1990-01-01;7574\n")
	if got := raw.expectPrefix("error;" + wire.CodeTLS + ": "); !strings.Contains(got, "speaks TLS") {
		t.Errorf("a plaintext frame at the TLS port got %q, want it to say the port speaks TLS", got)
	}
	raw.expectClosed()

	bets := []lottery.Bet{{FirstName: "Ana", LastName: "Pérez", Document: "111", Birthdate: "1990-01-01", Number: 7574}}
	for _, tc := range []struct {
		protocol string
		inFlight int
	}{{agency.ProtocolLoteria, 4}, {agency.ProtocolSeed, 1}} {
		var dials atomic.Int32
		c, err := agency.NewClient(agency.Options{Agency: 1, Address: h.addr, MaxBets: 10, InFlight: tc.inFlight,
			Protocol: tc.protocol, Timeout: 5 * time.Second, RetryBudget: time.Minute},
			agency.Deps{WrapConn: func(nc net.Conn) net.Conn { dials.Add(1); return nc }})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Run(t.Context(), agency.NewBetsStream(bets))
		if err == nil || !strings.Contains(err.Error(), "speaks TLS") {
			t.Errorf("%s: the agency's error: %v, want it to say the address speaks TLS", tc.protocol, err)
		}
		if n := dials.Load(); n != 1 {
			t.Errorf("%s: the agency connected %d times, want once: it retried a setting that will not change", tc.protocol, n)
		}
	}
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	if rows := testenv.ReadStore(t, h.store); len(rows) != 0 {
		t.Errorf("the store holds %d rows, want none", len(rows))
	}
}
