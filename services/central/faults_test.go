package central_test

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/loteria/loteria/observability"
	"github.com/loteria/loteria/services/central"
	"github.com/loteria/loteria/services/internal/store"
	"github.com/loteria/loteria/services/internal/store/faultfs"
	"github.com/loteria/loteria/services/internal/wire"
)

const faultStore = "/data/bets.csv"

// storedDocuments reopens the store on fsys (recovering it) and reads its
// bets file back with encoding/csv: the DNIs stored, with their counts.
func storedDocuments(t *testing.T, fsys *faultfs.FS) map[string]int {
	t.Helper()
	st, err := store.Open(faultStore, store.Options{FS: fsys})
	if err != nil {
		t.Fatalf("reopen the store: %v", err)
	}
	if err := st.Close(); err != nil {
		t.Fatalf("close the reopened store: %v", err)
	}
	data, err := fsys.ReadFile(faultStore)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
	if err != nil {
		t.Fatalf("the bets file is not CSV: %v", err)
	}
	got := make(map[string]int)
	for _, r := range recs {
		got[r[3]]++
	}
	return got
}

// TestStoreFaultsOverTCP fails the data write, the data sync, the journal
// write and the journal sync at each of the first steps of a run, with a
// stop-and-wait agency on a real socket, and checks what an operator and
// an agency must be able to trust: every success ack is durable (even
// after a power cut), no bet acknowledged "error;" is visible after a
// restart, the failure is sticky and visible on /readyz, and shutdown
// reports it.
//
// Both kinds of commit run: inline ones (their rows in the journal; with
// InlineBytes 64 every second commit syncs the bets file too) and ones
// that sync both files (InlineBytes -1).
func TestStoreFaultsOverTCP(t *testing.T) {
	for _, inline := range []int{64, -1} {
		for _, op := range []faultfs.Op{faultfs.OpWrite, faultfs.OpSync} {
			for _, file := range []string{faultStore, faultStore + ".journal"} {
				for k := 1; k <= 3; k++ {
					for _, restart := range []string{"kill", "powercut"} {
						name := fmt.Sprintf("inline%d/%s/%s/step%d/%s", inline, op, file[len("/data/"):], k, restart)
						t.Run(name, func(t *testing.T) { storeFault(t, inline, op, file, k, restart == "powercut", false) })
					}
				}
			}
		}
		// When the rollback fails too (the disk refuses to truncate), the
		// outcome is unknown: the agency must get no ack at all.
		for _, restart := range []string{"kill", "powercut"} {
			t.Run(fmt.Sprintf("inline%d/sync/journal/unrecoverable/%s", inline, restart), func(t *testing.T) {
				storeFault(t, inline, faultfs.OpSync, faultStore+".journal", 2, restart == "powercut", true)
			})
		}
	}
}

func storeFault(t *testing.T, inline int, op faultfs.Op, file string, k int, powerCut, noRollback bool) {
	fsys := faultfs.New()
	h := startCentral(t, central.Config{Agencies: 1}, withStore(faultStore), withStoreOptions(store.Options{FS: fsys, InlineBytes: inline}))
	h.failOK = true
	fsys.Inject(faultfs.Fault{Op: op, Name: file, Nth: k})
	if noRollback {
		fsys.Inject(faultfs.Fault{Op: faultfs.OpTruncate, Nth: 1, Sticky: true})
	}
	c := dialRaw(t, h.addr)
	acked, refused := map[string]bool{}, map[string]bool{}
	closed := false
	c.send(string(wire.AppendHello(nil, wire.Hello{Version: 1, Agency: 1, Fingerprint: "fa17", Total: -1})))
	p := c.expectPrefix("")
	helloFailed := strings.HasPrefix(p, "error;"+wire.CodeStoreFailed+": ")
	if !helloFailed && !strings.HasPrefix(p, "WELCOME;") {
		t.Fatalf("HELLO answered %q", p)
	}
	for i := 0; i < 6 && !closed && !helloFailed; i++ {
		dni := fmt.Sprint(5_000_000 + i)
		c.send(fmt.Sprintf("1;1;from=%d\nAna;Pérez;%s;1990-01-01;%d\n", i, dni, i))
		p, err := wire.ReadFrame(c.br, nil, 1<<16)
		switch {
		case err != nil:
			closed = true // outcome unknown: no ack at all, and that is allowed
		case string(p) == wire.AckSuccess:
			acked[dni] = true
		case strings.HasPrefix(string(p), "error;"+wire.CodeStoreFailed+": "):
			refused[dni] = true
		default:
			t.Fatalf("batch %d answered %q", i, p)
		}
	}
	if noRollback && !closed {
		t.Errorf("the rollback failed but the agency got an answer for every batch: acked %v, refused %v", acked, refused)
	}
	if len(refused) == 0 && !closed && !helloFailed {
		t.Fatalf("the injected %s fault on %s never surfaced: acks %v", op, file, acked)
	}
	t.Logf("acked %d, refused %d, closed without an ack %v, HELLO refused %v", len(acked), len(refused), closed, helloFailed)
	// Sticky and visible.
	if err := h.srv.Ready(); err == nil {
		t.Error("Ready() is nil after a store failure")
	}
	hs := httptest.NewServer(observability.NewHTTPServer("", h.reg, observability.HTTPOptions{Ready: h.srv.Ready}).Handler())
	resp, err := http.Get(hs.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	hs.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "store") {
		t.Errorf("/readyz = %d %q, want 503 naming the store", resp.StatusCode, body)
	}
	if got := testutil.ToFloat64(counterWith(t, h.reg, "loteria_store_failed", "", "")); got != 1 {
		t.Errorf("loteria_store_failed = %v, want 1", got)
	}
	if st := h.srv.Status(); !st.Store.Failed {
		t.Error("status does not say the store failed")
	}
	if !closed && !helloFailed {
		// A later batch is refused too; no sync is retried.
		syncs := fsys.Calls(faultfs.OpSync, "")
		c.send("1;1;from=100\nAna;Pérez;5000100;1990-01-01;1\n")
		c.expectCode(wire.CodeStoreFailed)
		if got := fsys.Calls(faultfs.OpSync, ""); got != syncs {
			t.Errorf("%d syncs after the failure: a failed store must not sync again", got-syncs)
		}
	}
	if err := h.stop(); err == nil {
		t.Error("shutdown after a store failure reported no error: the central would exit 0")
	}

	// A restart with the page cache kept (as after SIGKILL), or after a
	// power cut (only what was synced, and torn tails).
	fsys.ClearFaults()
	after := fsys
	if powerCut {
		after = fsys.Crash(rand.New(rand.NewPCG(uint64(k), uint64(op))))
	}
	got := storedDocuments(t, after)
	for dni := range acked {
		if got[dni] != 1 {
			t.Errorf("acknowledged bet %s stored %d times, want once", dni, got[dni])
		}
	}
	for dni := range refused {
		if got[dni] != 0 {
			t.Errorf("bet %s was acknowledged error; but is stored", dni)
		}
	}
	for dni, n := range got {
		if n > 1 {
			t.Errorf("bet %s stored %d times", dni, n)
		}
	}
}
