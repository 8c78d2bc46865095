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

// TestReplacedConnectionWaitingForRoomEndsAtOnce: an agency's TLS
// connection whose frame waits for room while the disk does not answer is
// replaced by a newer connection of the same certificate.
//   - Room in the in-flight budget, which another agency's batch holds: the
//     older has nothing in flight and ends at once, so the newer need not
//     wait for it. It once went on waiting for room that only the disk
//     could free, and the newer waited replaceWait (5 s) for it
//     (helper-31, from reading the code).
//   - Room in its own share, which its own batch holds: the older answers
//     that batch when the disk does, and stores nothing more.
func TestReplacedConnectionWaitingForRoomEndsAtOnce(t *testing.T) {
	for _, holder := range []int{2, 1} {
		name := map[int]string{2: "budget held by another agency", 1: "share held by its own batch"}[holder]
		t.Run(name, func(t *testing.T) { replacedWhileWaiting(t, holder) })
	}
}

func replacedWhileWaiting(t *testing.T, holder int) {
	dir := t.TempDir()
	ca := certstest.CA(t)
	caFile := certstest.Write(t, dir, "ca", ca).Cert
	cf := certstest.Write(t, dir, "central", certstest.Central(t, ca, "127.0.0.1"))
	tc, err := tlsconf.ServerConfig(cf.Cert, cf.Key, caFile)
	if err != nil {
		t.Fatal(err)
	}
	const maxFrame, limit = 16 << 10, 60_000
	cfg := Config{TLSAddress: "127.0.0.1:0", TLS: tc, AgencyID: tlsconf.PeerAgency, HandshakeReason: tlsconf.HandshakeReason,
		HandshakeReasons: tlsconf.Reasons(), Agencies: 2, MaxFrame: maxFrame, MaxInflightBytes: limit}
	sfs := &stallFS{released: make(chan struct{})}
	defer sfs.release()
	reg := prometheus.NewRegistry()
	st, err := store.Open(filepath.Join(dir, "bets.csv"), store.Options{FS: sfs})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	srv, err := New(cfg, Deps{Ledger: st, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	defer func() {
		sfs.release()
		cancel()
		select {
		case <-served:
		case <-time.After(15 * time.Second):
			t.Error("Serve did not return")
		}
	}()

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
		nc.SetDeadline(time.Now().Add(20 * time.Second))
		return nc
	}
	batch := func(agency, payloadBytes int) ([]byte, int) {
		var b strings.Builder
		n := 0
		for b.Len() < payloadBytes-64 {
			fmt.Fprintf(&b, "Ana;Pérez;%d;1990-01-01;%d\n", 10_000_000+agency*100_000+n, n)
			n++
		}
		return wire.AppendFrame(nil, []byte(fmt.Sprintf("%d;%d\n%s", agency, n, b.String()))), n
	}
	send := func(nc *tls.Conn, frame []byte) {
		t.Helper()
		if _, err := nc.Write(frame); err != nil {
			t.Fatal(err)
		}
	}

	conns := map[int]*tls.Conn{2: dial(2), 1: dial(1)}
	sfs.armed.Store(true)
	// The holder's batch holds most of the budget while its commit waits
	// for the disk.
	frame, first := batch(holder, 14_000)
	send(conns[holder], frame)
	testenv.Eventually(t, 5*time.Second, "the first batch's commit to wait for the disk", func() bool {
		return sfs.stalled.Load() > 0
	})
	if held := srv.budget.inUse(); held+frameCharge(12_000) <= min(limit, srv.share) {
		t.Fatalf("the first batch holds %d bytes of %d: agency 1's next frame would not wait", held, limit)
	}
	// Agency 1's frame finds too little room and waits.
	frame, _ = batch(1, 12_000)
	send(conns[1], frame)
	testenv.Eventually(t, 5*time.Second, "agency 1's frame to wait for room", func() bool {
		if holder == 1 {
			return testutil.ToFloat64(srv.m.shareWaits) == 1
		}
		return srv.budget.waiters() == 1
	})
	// A newer connection of agency 1 replaces it.
	_ = dial(1)
	replaced := srv.m.closed.WithLabelValues(closeReplaced)
	if holder == 2 {
		// The older has nothing in flight: it ends while the disk still
		// does not answer.
		testenv.Eventually(t, 4*time.Second, "the replaced connection to end (the disk still stalled)", func() bool {
			return testutil.ToFloat64(replaced) == 1
		})
		if n := srv.budget.waiters(); n != 0 {
			t.Errorf("%d frames still wait for the budget", n)
		}
		return
	}
	// The older answers its batch in flight once the disk does, and
	// takes no other frame: the one that waited is not stored.
	sfs.release()
	testenv.Eventually(t, 5*time.Second, "the replaced connection to end", func() bool {
		return testutil.ToFloat64(replaced) == 1
	})
	if got := testutil.ToFloat64(srv.m.betsStored.WithLabelValues("1")); got != float64(first) {
		t.Errorf("agency 1 has %v bets stored, want %d: the replaced connection stored the frame that waited for room", got, first)
	}
}
