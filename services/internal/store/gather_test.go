package store

import (
	"fmt"
	"io/fs"
	"sync"
	"testing"
	"time"

	"github.com/loteria/loteria/services/internal/ledger"
	"github.com/loteria/loteria/services/internal/store/faultfs"
	"github.com/loteria/loteria/services/internal/store/fsys"
)

// gateFS holds every File.Sync while shut, until the test opens it: the
// test then knows the writer is inside a commit, and that a commit began.
type gateFS struct {
	fsys.FS
	mu      sync.Mutex
	shut    bool
	open    chan struct{} // closed by openGate
	entered chan struct{} // one send per held sync
}

func newGateFS() *gateFS {
	return &gateFS{FS: faultfs.New(), entered: make(chan struct{}, 64)}
}

func (g *gateFS) shutGate() {
	g.mu.Lock()
	g.shut, g.open = true, make(chan struct{})
	g.mu.Unlock()
}

func (g *gateFS) openGate() {
	g.mu.Lock()
	g.shut = false
	close(g.open)
	g.mu.Unlock()
}

// drain forgets the syncs held so far (all of them done: the test waited
// for their receipts).
func (g *gateFS) drain() {
	for {
		select {
		case <-g.entered:
		default:
			return
		}
	}
}

// release opens the gate if it is shut, so that a failed test's Close
// does not wait on a held sync.
func (g *gateFS) release() {
	g.mu.Lock()
	shut := g.shut
	g.mu.Unlock()
	if shut {
		g.openGate()
	}
}

func (g *gateFS) hold() {
	g.mu.Lock()
	shut, open := g.shut, g.open
	g.mu.Unlock()
	if shut {
		g.entered <- struct{}{}
		<-open
	}
}

func (g *gateFS) OpenFile(name string, flag int, perm fs.FileMode) (fsys.File, error) {
	f, err := g.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return gateFile{f, g}, nil
}

type gateFile struct {
	fsys.File
	g *gateFS
}

func (f gateFile) Sync() error { f.g.hold(); return f.File.Sync() }

// waitT waits for r, failing the test if it takes longer than a store
// ever should here (a guard against a hang, not a synchronisation).
func waitT(t *testing.T, what string, r *ledger.Receipt) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- r.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: not durable after 30s", what)
	}
}

func submitT(t *testing.T, s *Store, agency int, from int64) *ledger.Receipt {
	t.Helper()
	r, err := submit(s, agency, from, from, 1)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// bet is one batch of one bet to submit: agency's bet from.
type bet struct {
	agency int
	from   int64
}

// groupBehind commits agency 1's bet from1 alone, its sync held while
// the batches of next queue, so that they make the next group together;
// it returns their receipts, durable.
func groupBehind(t *testing.T, s *Store, g *gateFS, from1 int64, next ...bet) []*ledger.Receipt {
	t.Helper()
	g.drain()
	g.shutGate()
	r1 := submitT(t, s, 1, from1)
	<-g.entered
	rs := make([]*ledger.Receipt, len(next))
	for i, b := range next {
		rs[i] = submitT(t, s, b.agency, b.from)
	}
	g.openGate()
	waitT(t, "agency 1", r1)
	for i, r := range rs {
		waitT(t, fmt.Sprintf("agency %d", next[i].agency), r)
		if r.Group.Batches != len(next) || r.Group.Seq != rs[0].Group.Seq {
			t.Fatalf("agency %d's batch in group %+v, the first's in %+v: want the %d queued together", next[i].agency, r.Group, rs[0].Group, len(next))
		}
	}
	return rs
}

// watchGathers makes the writer say on the returned channel each time a
// gather starts waiting, and for how many batches.
func watchGathers(s *Store) <-chan int {
	c := make(chan int, 64)
	s.mu.Lock()
	s.gathering = func(want int) { c <- want }
	s.mu.Unlock()
	return c
}

// expectGather fails unless the writer waits to gather want batches
// rather than committing what is queued (a sync entering the shut gate).
func expectGather(t *testing.T, g *gateFS, gathers <-chan int, want int) {
	t.Helper()
	select {
	case got := <-gathers:
		if got != want {
			t.Fatalf("the writer gathers for %d batches, want %d", got, want)
		}
	case <-g.entered:
		t.Fatal("the writer committed a lone batch instead of gathering")
	}
}

// setGatherWait replaces the gather's bound; the writer reads it under s.mu.
func setGatherWait(s *Store, d time.Duration) {
	s.mu.Lock()
	s.gatherWait = func(time.Duration) time.Duration { return d }
	s.mu.Unlock()
}

// Stop-and-wait agencies come back one by one after their group is
// durable; the writer waits for as many batches as the last group had,
// so they share the next sync instead of paying one alone and then one
// together.
func TestWriterGathersWhatTheLastGroupHad(t *testing.T) {
	g := newGateFS()
	s := openT(t, memPath, Options{FS: g})
	defer closeT(t, s)
	defer g.release()
	setGatherWait(s, time.Hour) // only the batches arriving end a gather here

	// A group of one (agency 1) held in its sync while agencies 2-4 queue:
	// the next group has their three batches.
	groupBehind(t, s, g, 0, bet{2, 0}, bet{3, 0}, bet{4, 0})
	var rs [5]*ledger.Receipt

	// The three come back one at a time: the first is not committed alone.
	gathers := watchGathers(s)
	for round := int64(1); round <= 3; round++ {
		g.drain()
		g.shutGate()
		rs[2] = submitT(t, s, 2, round)
		expectGather(t, g, gathers, 3)
		rs[3], rs[4] = submitT(t, s, 3, round), submitT(t, s, 4, round)
		g.openGate()
		for a := 2; a <= 4; a++ {
			waitT(t, "gathered round", rs[a])
			if got := rs[a].Group; got.Batches != 3 || got.Seq != rs[2].Group.Seq {
				t.Fatalf("round %d: agency %d's batch in group %+v, agency 2's in %+v; want one group of 3", round, a, got, rs[2].Group)
			}
		}
	}

	// Only one of them comes back: the gather ends at its bound (here the
	// store's own, the last commit's time up to gatherMaxWait).
	s.mu.Lock()
	s.gatherWait = gatherFor
	s.mu.Unlock()
	r := submitT(t, s, 2, 4)
	waitT(t, "a lone batch after a group of 3", r)
	if r.Group.Batches != 1 {
		t.Fatalf("lone batch in group %+v", r.Group)
	}
}

// A single stop-and-wait agency's groups have one batch each: the writer
// never waits for a second one (were it to, each batch here would wait
// the hour the test sets as the bound).
func TestWriterDoesNotGatherForALoneAgency(t *testing.T) {
	s := openT(t, memPath, Options{FS: faultfs.New()})
	defer closeT(t, s)
	setGatherWait(s, time.Hour)
	gathers := watchGathers(s)
	for i := range int64(20) {
		r := submitT(t, s, 1, i)
		waitT(t, "lone agency", r)
		if r.Group.Batches != 1 {
			t.Fatalf("batch %d in group %+v", i, r.Group)
		}
		select {
		case want := <-gathers:
			t.Fatalf("batch %d: the writer waited to gather %d batches for a lone agency", i, want)
		default:
		}
	}
}

// Close ends a gather at once: what was queued is committed and Close
// returns, however long the bound.
func TestCloseEndsAGather(t *testing.T) {
	g := newGateFS()
	s := openT(t, memPath, Options{FS: g})
	defer s.Close()
	defer g.release()
	setGatherWait(s, time.Hour)
	groupBehind(t, s, g, 0, bet{2, 0}, bet{3, 0})
	gathers := watchGathers(s)
	g.drain()
	g.shutGate()
	r := submitT(t, s, 2, 1)
	expectGather(t, g, gathers, 2)
	g.openGate()
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	waitT(t, "the batch queued before Close", r)
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Close still waiting for a gather after 30s")
	}
}

// An agency with two batches in one group pipelines: it sends again
// without waiting for acks, so the writer does not wait for it.
func TestWriterDoesNotGatherForAPipeline(t *testing.T) {
	g := newGateFS()
	s := openT(t, memPath, Options{FS: g})
	defer closeT(t, s)
	defer g.release()
	setGatherWait(s, time.Hour)
	groupBehind(t, s, g, 0, bet{2, 0}, bet{2, 1})
	gathers := watchGathers(s)
	g.drain()
	g.shutGate()
	r := submitT(t, s, 2, 2)
	select {
	case <-g.entered: // committed at once
	case want := <-gathers:
		t.Fatalf("the writer waits to gather %d batches after a pipelining agency's group", want)
	}
	g.openGate()
	waitT(t, "agency 2's third", r)
}

func TestGatherFor(t *testing.T) {
	for _, tt := range []struct{ last, want time.Duration }{
		{0, 0},
		{gatherMinCommit - 1, 0}, // no sync: not worth a wait
		{gatherMinCommit, gatherMinCommit},
		{300 * time.Microsecond, 300 * time.Microsecond},
		{gatherMaxWait, gatherMaxWait},
		{50 * time.Millisecond, gatherMaxWait}, // a slow disk: bounded
	} {
		if got := gatherFor(tt.last); got != tt.want {
			t.Errorf("gatherFor(%v) = %v, want %v", tt.last, got, tt.want)
		}
	}
}

// What is not a batch (here an END) is not waited on, and ends a gather
// under way: what follows it is a round's end, not more batches.
func TestGatherEndsAtWhatIsNotABatch(t *testing.T) {
	g := newGateFS()
	s := openT(t, memPath, Options{FS: g})
	defer closeT(t, s)
	defer g.release()
	setGatherWait(s, time.Hour)
	groupBehind(t, s, g, 0, bet{2, 0}, bet{3, 0}, bet{4, 0})
	gathers := watchGathers(s)

	// An END alone after a group of three: committed at once.
	g.drain()
	g.shutGate()
	end4, err := s.End(4)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-g.entered:
	case want := <-gathers:
		t.Fatalf("the writer waits to gather %d batches behind an END", want)
	}
	g.openGate()
	waitT(t, "agency 4's END", end4)

	// A group of two (agency 1's batch held in its sync while agencies 2
	// and 3 queue theirs), then agency 2 alone: the writer gathers for
	// two, and agency 3's END ends that gather.
	groupBehind(t, s, g, 1, bet{2, 1}, bet{3, 1})
	g.drain()
	g.shutGate()
	r := submitT(t, s, 2, 2)
	expectGather(t, g, gathers, 2)
	end3, err := s.End(3)
	if err != nil {
		t.Fatal(err)
	}
	<-g.entered // the gather ended: a commit began
	g.openGate()
	waitT(t, "agency 2's batch", r)
	waitT(t, "agency 3's END", end3)
	if r.Group.Seq != end3.Group.Seq {
		t.Errorf("agency 2's batch in group %+v, agency 3's END in %+v: want one commit", r.Group, end3.Group)
	}
}
