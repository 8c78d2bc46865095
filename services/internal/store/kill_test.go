package store

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/loteria/loteria/internal/testenv"
)

// killEnv makes the test binary a helper that appends to a real store
// until it is killed: 4 agencies, each sending batches from its mark with
// several in flight, printing "ack <agency> <from> <to>" once a batch is
// durable.
const killEnv = "LOTERIA_STORE_KILL_HELPER"

// killGroupEnv, when set, is the helper's MaxGroupBytes, and its batches
// are of mixed sizes: most small, some near and over preallocMaxWrite of
// rows (docs/STORE.md, "Zeros ahead of the end"), bounded by the group.
const killGroupEnv = "LOTERIA_STORE_KILL_GROUP"

func killHelper() int {
	group, mixed := 64<<10, false
	if g, err := strconv.Atoi(os.Getenv(killGroupEnv)); err == nil {
		group, mixed = g, true
	}
	s, err := Open(os.Getenv(killEnv), Options{MaxGroupBytes: group})
	if err != nil {
		fmt.Println("open:", err)
		return 1
	}
	var mu sync.Mutex // one line at a time
	var wg sync.WaitGroup
	for a := 1; a <= 4; a++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			type sent struct {
				from, to int64
				wait     func() error
			}
			inflight := make(chan sent, 8)
			go func() {
				for b := range inflight {
					if b.wait() == nil {
						mu.Lock()
						fmt.Printf("ack %d %d %d\n", a, b.from, b.to)
						mu.Unlock()
					}
				}
			}()
			rng := rand.New(rand.NewPCG(uint64(a), uint64(os.Getpid())))
			for from := s.Agency(a).Mark; ; {
				n := 1 + int(from%7)
				if mixed {
					switch p := rng.IntN(20); {
					case p == 0:
						n = 3000
					case p < 5:
						n = 1100 + rng.IntN(400)
					}
					n = min(n, group/70)
				}
				r, err := submit(s, a, from, from, n)
				if err != nil {
					fmt.Println("submit:", err)
					os.Exit(1)
				}
				inflight <- sent{from, from + int64(n), r.Wait}
				from += int64(n)
			}
		}()
	}
	wg.Wait()
	return 0
}

// TestKillMidWrite kills (SIGKILL) a process appending to a real store on
// the real file system, several times over, and checks after each kill
// that every batch it reported durable is stored exactly once and that
// each agency's bets run without a gap or a repeat from 0 to its mark.
func TestKillMidWrite(t *testing.T) {
	zeroed := killRounds(t, []string{"", "", ""}, 300)
	if zeroed[0] == 0 || zeroed[1] == 0 {
		t.Fatalf("no kill left zeros ahead of both files' ends (%v): the test did not see what it checks", zeroed)
	}
}

// TestKillMidWriteMixedSizes: the same with commits on both sides of
// preallocMaxWrite and MaxGroupBytes changing from one run to the next.
func TestKillMidWriteMixedSizes(t *testing.T) {
	killRounds(t, []string{"4194304", "16384", "70000", "262144"}, 100)
}

// killRounds runs the helper once per entry of groups (its MaxGroupBytes,
// "" for the default and small batches), kills it once it acknowledged
// acks batches, and checks the store.
// It returns how many kills left the bets file and the journal ending in
// zeros.
func killRounds(t *testing.T, groups []string, acks int) (zeroed [2]int) {
	path := filepath.Join(t.TempDir(), "bets.csv")
	acked := map[int]int64{} // agency → the highest acknowledged end
	for round, group := range groups {
		cmd := testenv.Child(exec.Command(os.Args[0], "-test.run=^$"))
		cmd.Env = append(os.Environ(), killEnv+"="+path)
		if group != "" {
			cmd.Env = append(cmd.Env, killGroupEnv+"="+group)
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		n := 0
		deadline := time.Now().Add(30 * time.Second)
		for n < acks && sc.Scan() {
			var a int
			var from, to int64
			if _, err := fmt.Sscanf(sc.Text(), "ack %d %d %d", &a, &from, &to); err != nil {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("helper said %q", sc.Text())
			}
			acked[a] = max(acked[a], to)
			n++
			if time.Now().After(deadline) {
				break
			}
		}
		cmd.Process.Kill()
		cmd.Wait()
		if n < acks {
			t.Fatalf("kill %d: the helper acknowledged only %d batches", round+1, n)
		}
		// SIGKILL leaves what the writer wrote, the zeros it keeps ahead
		// of the files' ends included: recovery cuts them.
		for i, name := range []string{path, journalPath(path)} {
			if b, _ := os.ReadFile(name); len(b) > 0 && b[len(b)-1] == 0 {
				zeroed[i]++
			}
		}
		s := openT(t, path, Options{MaxGroupBytes: 4 << 20})
		rec := s.Recovered()
		closeT(t, s)
		data, _ := os.ReadFile(path)
		next := map[int]int64{}
		for _, id := range storedBets(t, data) {
			if id.index != next[id.agency] {
				t.Fatalf("kill %d: agency %d's bet %d stored where bet %d was due", round+1, id.agency, id.index, next[id.agency])
			}
			next[id.agency]++
		}
		for a, to := range acked {
			if next[a] < to || rec.Agencies[a].Mark != next[a] {
				t.Fatalf("kill %d: agency %d: %d bets stored, mark %d, but %d were acknowledged", round+1, a, next[a], rec.Agencies[a].Mark, to)
			}
		}
		t.Logf("kill %d: %d acknowledged batches; %d bets stored; quarantined %d bytes", round+1, n, rec.Bets, rec.QuarantinedBytes)
	}
	return zeroed
}
