package central

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/loteria/loteria/internal/testenv"
	"github.com/loteria/loteria/services/internal/certs/certstest"
	"github.com/loteria/loteria/services/internal/store"
	"github.com/loteria/loteria/services/internal/store/fsys"
	"github.com/loteria/loteria/services/internal/tlsconf"
	"github.com/loteria/loteria/services/internal/wire"
)

// stallFS is the real file system whose syncs, once armed, wait until
// released: a disk that has stopped answering.
type stallFS struct {
	fsys.OS
	armed    atomic.Bool
	stalled  atomic.Int32 // syncs waiting
	released chan struct{}
	once     sync.Once
}

func (f *stallFS) release() { f.once.Do(func() { close(f.released) }) }

func (f *stallFS) OpenFile(name string, flag int, perm fs.FileMode) (fsys.File, error) {
	file, err := f.OS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return stallFile{file, f}, nil
}

type stallFile struct {
	fsys.File
	fs *stallFS
}

func (f stallFile) Sync() error {
	if f.fs.armed.Load() {
		f.fs.stalled.Add(1)
		<-f.fs.released
	}
	return f.File.Sync()
}

// stalledTLS is a central with only its mutual-TLS listener, on a store
// whose syncs stall once sfs is armed.
type stalledTLS struct {
	srv  *Server
	sfs  *stallFS
	dial func(agency int) *tls.Conn
}

func startStalledTLS(t *testing.T, cfg Config) *stalledTLS {
	t.Helper()
	dir := t.TempDir()
	ca := certstest.CA(t)
	caFile := certstest.Write(t, dir, "ca", ca).Cert
	cf := certstest.Write(t, dir, "central", certstest.Central(t, ca, "127.0.0.1"))
	tc, err := tlsconf.ServerConfig(cf.Cert, cf.Key, caFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg.TLSAddress, cfg.TLS, cfg.AgencyID = "127.0.0.1:0", tc, tlsconf.PeerAgency
	cfg.HandshakeReason, cfg.HandshakeReasons = tlsconf.HandshakeReason, tlsconf.Reasons()
	sfs := &stallFS{released: make(chan struct{})}
	st, err := store.Open(filepath.Join(dir, "bets.csv"), store.Options{FS: sfs})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(cfg, Deps{Ledger: st, Registerer: prometheus.NewRegistry()})
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	ln, err := Listen(cfg)
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		sfs.release()
		cancel()
		select {
		case <-served:
		case <-time.After(15 * time.Second):
			t.Error("Serve did not return")
		}
		st.Close()
	})
	pool := x509.NewCertPool()
	pem, err := os.ReadFile(caFile)
	if err != nil || !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("CA %s: %v", caFile, err)
	}
	dial := func(agency int) *tls.Conn {
		t.Helper()
		f := certstest.Write(t, dir, fmt.Sprintf("agency-%d-%d", agency, time.Now().UnixNano()), certstest.Agency(t, ca, agency))
		cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
		if err != nil {
			t.Fatal(err)
		}
		nc, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", ln.TLS.Addr().String(),
			&tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}, RootCAs: pool, ServerName: "127.0.0.1"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		nc.SetDeadline(time.Now().Add(30 * time.Second))
		return nc
	}
	return &stalledTLS{srv: srv, sfs: sfs, dial: dial}
}

// betsFrame is a seed-protocol batch frame of agency with about
// payloadBytes of payload, its documents numbered from base; it returns
// the frame and its bet count.
func betsFrame(agency, base, payloadBytes int) ([]byte, int) {
	var b strings.Builder
	n := 0
	for b.Len() < payloadBytes-40 {
		fmt.Fprintf(&b, "Ana;Pérez;%d;1990-01-01;%d\n", 10_000_000+agency*100_000+base+n, n)
		n++
	}
	return wire.AppendFrame(nil, []byte(fmt.Sprintf("%d;%d\n%s", agency, n, b.String()))), n
}

func (h *stalledTLS) live(agency int) *conn {
	h.srv.mu.Lock()
	defer h.srv.mu.Unlock()
	return h.srv.agencies[agency]
}

func (c *conn) queuedAcks() int {
	c.acks.mu.Lock()
	defer c.acks.mu.Unlock()
	return c.acks.queued
}

func send(t *testing.T, nc *tls.Conn, frame []byte) {
	t.Helper()
	if _, err := nc.Write(frame); err != nil {
		t.Fatal(err)
	}
}

// TestReplacedConnectionWaitingForTheBudgetEndsAtOnce: an agency's TLS
// connection whose frame waits for room in the in-flight budget, which
// another agency's batch holds while the disk does not answer, is replaced
// by a newer connection of the same certificate. The older has nothing in
// flight and ends at once, so the newer need not wait for it. It once went
// on waiting for room that only the disk could free, and the newer waited
// replaceWait (5 s) for it (helper-31, from reading the code).
func TestReplacedConnectionWaitingForTheBudgetEndsAtOnce(t *testing.T) {
	const limit = 60_000
	h := startStalledTLS(t, Config{Agencies: 2, MaxFrame: 16 << 10, MaxInflightBytes: limit})
	srv := h.srv
	a2, a1 := h.dial(2), h.dial(1)
	h.sfs.armed.Store(true)
	frame, _ := betsFrame(2, 0, 14_000)
	send(t, a2, frame)
	testenv.Eventually(t, 5*time.Second, "agency 2's commit to wait for the disk", func() bool {
		return h.sfs.stalled.Load() > 0
	})
	if held := srv.budget.inUse(); held+frameCharge(12_000) <= limit {
		t.Fatalf("agency 2's batch holds %d bytes of %d: agency 1's frame would not wait", held, limit)
	}
	frame, _ = betsFrame(1, 0, 12_000)
	send(t, a1, frame)
	testenv.Eventually(t, 5*time.Second, "agency 1's frame to wait for the budget", func() bool {
		return srv.budget.waiters() == 1
	})
	_ = h.dial(1)
	replaced := srv.m.closed.WithLabelValues(closeReplaced)
	testenv.Eventually(t, 4*time.Second, "the replaced connection to end (the disk still stalled)", func() bool {
		return testutil.ToFloat64(replaced) == 1
	})
	if n := srv.budget.waiters(); n != 0 {
		t.Errorf("%d frames still wait for the budget", n)
	}
}

// TestReplacedConnectionTakesNoFrameThatWaitedForItsShare: an agency's TLS
// connection fills its share of the budget with batches the disk holds
// back, and its next frame, small enough to arrive in one TLS record, waits
// for its share. A newer connection of the certificate replaces it. When
// the disk answers, the older answers the batches it had in flight and
// does not store the frame that waited. It once did: crypto/tls had
// already decrypted the whole record, so the replacement's read deadline
// of now did not stop the payload's read (helper-34).
func TestReplacedConnectionTakesNoFrameThatWaitedForItsShare(t *testing.T) {
	// The share is min(limit, max(limit/16, frameCharge(2048))) = 8,704 B.
	h := startStalledTLS(t, Config{Agencies: 2, MaxFrame: 2048, MaxInflightBytes: 60_000})
	srv := h.srv
	older := h.dial(1)
	h.sfs.armed.Store(true)
	frame, inFlight := betsFrame(1, 0, 1000)
	send(t, older, frame)
	testenv.Eventually(t, 5*time.Second, "the first batch to wait for the disk", func() bool { return h.sfs.stalled.Load() > 0 })
	c := h.live(1)
	testenv.Eventually(t, 5*time.Second, "the first batch queued", func() bool { return c.queuedAcks() == 1 })
	// More batches, until the last frame cannot fit the share.
	last, _ := betsFrame(1, 50_000, 900)
	lastCharge := frameCharge(len(last) - wire.HeaderLen)
	for q := 2; srv.budget.inUse()+lastCharge <= srv.share; q++ {
		size := int(min(1000, (srv.share-srv.budget.inUse()-queueCharge)/(1+rowsPerPayload)))
		if size < 100 {
			t.Fatalf("cannot fill the share: %d of %d held", srv.budget.inUse(), srv.share)
		}
		frame, n := betsFrame(1, inFlight, size)
		inFlight += n
		send(t, older, frame)
		testenv.Eventually(t, 5*time.Second, fmt.Sprintf("batch %d queued", q), func() bool { return c.queuedAcks() == q })
	}
	send(t, older, last)
	testenv.Eventually(t, 5*time.Second, "the last frame to wait for the connection's share", func() bool {
		return testutil.ToFloat64(srv.m.shareWaits) == 1
	})
	go func() { _ = h.dial(1) }()
	testenv.Eventually(t, 5*time.Second, "the older to be replaced", func() bool { return c.replaced.Load() })
	h.sfs.release()
	select {
	case <-c.finished():
	case <-time.After(10 * time.Second):
		t.Fatal("the replaced connection did not end")
	}
	if got := testutil.ToFloat64(srv.m.betsStored.WithLabelValues("1")); got != float64(inFlight) {
		t.Errorf("agency 1 has %v bets stored, want the %d in flight before the replacement: the replaced connection stored the frame that waited for its share", got, inFlight)
	}
	if got := testutil.ToFloat64(srv.m.closed.WithLabelValues(closeReplaced)); got != 1 {
		t.Errorf("closed{replaced} = %v, want 1", got)
	}
}
