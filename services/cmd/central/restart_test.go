package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/loteria/loteria/internal/testenv"
	"github.com/loteria/loteria/services/central"
	"github.com/loteria/loteria/services/internal/datagen"
)

// killData is the data of the restart tests: the official files when
// they are there, otherwise five generated files of the same shape (a
// large agency, a small one), so the test never skips for want of them.
func killData(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(testenv.RepoRoot(t), "..", "shared", "datasets", "tp0")
	if _, err := os.Stat(testenv.AgencyFile(dir, 1)); err == nil {
		return dir
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("official data not found at %s (CI is set: the test must run on it)", dir)
	}
	dir = t.TempDir()
	for i, n := range []int{13000, 12000, 8000, 4500, 500} {
		if _, err := datagen.WriteFile(testenv.AgencyFile(dir, i+1), datagen.Options{Seed: 11, Agency: i + 1}, n); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("official data absent: generated 5 files in %s", dir)
	return dir
}

// agencyProc is one agency process and what it printed.
type agencyProc struct {
	cmd    *exec.Cmd
	out    testenv.Buffer
	stderr testenv.Buffer
	done   chan error
}

func startAgency(t *testing.T, bin, addr, file string, id int, extra ...string) *agencyProc {
	t.Helper()
	args := append([]string{"--id", fmt.Sprint(id), "--server", addr, "--data", file, "--batch-max", "10",
		"--retry-base", "20ms", "--retry-max", "300ms", "--retry-budget", "2m", "--timeout", "5s",
		"--log-format", "json"}, extra...)
	a := &agencyProc{cmd: testenv.Child(exec.Command(bin, args...)), done: make(chan error, 1)}
	a.cmd.Stdout, a.cmd.Stderr = &a.out, &a.stderr
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { a.done <- a.cmd.Wait() }()
	t.Cleanup(func() {
		if a.cmd.ProcessState == nil {
			a.cmd.Process.Kill()
			<-a.done
		}
	})
	return a
}

// status reads the central's /status, or fails (when it is down).
func status(metrics string) (central.Status, error) {
	var st central.Status
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get("http://" + metrics + "/status")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("status %d", resp.StatusCode)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// TestRestartsExactlyOnce runs five agency processes on the official data
// (batch.maxAmount 10, paced so the run lasts several seconds) while the
// central is stopped and restarted on the same store and port at random
// instants, at least ten times, plus once right after every END and once
// after the draw. Every agency must exit 0 with exactly its own winners,
// and the store must hold every bet exactly once, in file order.
func TestRestartsExactlyOnce(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) { restartsExactlyOnce(t, sig) })
	}
}

func restartsExactlyOnce(t *testing.T, sig syscall.Signal) {
	if testing.Short() {
		t.Skip("runs central and agency processes for several seconds")
	}
	dir := killData(t)
	bins := testenv.BuildPrograms(t, t.TempDir(), "central", "agency")
	store := filepath.Join(t.TempDir(), "bets.csv")
	addrs := testenv.FreeAddrs(t, 2)
	addr, metrics := addrs[0], addrs[1]
	host, port, _ := strings.Cut(addr, ":")
	_, mport, _ := strings.Cut(metrics, ":")
	env := []string{"SERVER_HOST=" + host, "SERVER_PORT=" + port, "CLIENT_COUNT=5", "STORE_PATH=" + store,
		"METRICS_ADDR=127.0.0.1:" + mport, "LOG_FORMAT=json", "OTEL_TRACES_EXPORTER=none", "SHUTDOWN_TIMEOUT=3s"}
	var logMu sync.Mutex
	var logs strings.Builder
	start := func() (*exec.Cmd, chan error) {
		t.Helper()
		cmd := testenv.Child(exec.Command(bins["central"]))
		cmd.Env = append(os.Environ(), env...)
		stderr, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			sc := bufio.NewScanner(stderr)
			sc.Buffer(make([]byte, 64<<10), 1<<20)
			for sc.Scan() {
				logMu.Lock()
				logs.WriteString(sc.Text() + "\n")
				logMu.Unlock()
			}
			done <- cmd.Wait()
		}()
		testenv.Eventually(t, 20*time.Second, "the central to be ready", func() bool {
			_, err := status(metrics)
			return err == nil
		})
		return cmd, done
	}
	central, done := start()
	t.Cleanup(func() {
		if central.ProcessState == nil {
			central.Process.Kill()
			<-done
		}
		if t.Failed() {
			logMu.Lock()
			t.Logf("central logs:\n%s", logs.String())
			logMu.Unlock()
		}
	})
	restarts := 0
	restart := func(why string) {
		t.Helper()
		if err := central.Process.Signal(sig); err != nil {
			t.Fatal(err)
		}
		err := <-done
		if sig == syscall.SIGTERM && err != nil {
			t.Fatalf("central exited with %v after SIGTERM (%s), want 0", err, why)
		}
		central, done = start()
		restarts++
	}

	// Paced: the largest file takes about 6 s at this rate.
	files := make([]int, 6)
	agencies := make([]*agencyProc, 6)
	for i := 1; i <= 5; i++ {
		files[i] = len(testenv.ReadAgencyFile(t, testenv.AgencyFile(dir, i), i))
	}
	rate := fmt.Sprint(slices.Max(files) / 6)
	for i := 1; i <= 5; i++ {
		agencies[i] = startAgency(t, bins["agency"], addr, testenv.AgencyFile(dir, i), i, "--rate", rate)
	}

	// Ten restarts at random instants of the first five seconds, and one
	// after every END and after the draw, whichever comes first.
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(sig)))
	var at []time.Duration
	for range 10 {
		at = append(at, time.Duration(300+rng.IntN(4700))*time.Millisecond)
	}
	slices.Sort(at)
	began := time.Now()
	finished, drawn := 0, false
	var exited [6]bool
	var exitErr [6]error
	running := func() int {
		n := 0
		for i := 1; i <= 5; i++ {
			if !exited[i] {
				select {
				case exitErr[i] = <-agencies[i].done:
					exited[i] = true
				default:
					n++
				}
			}
		}
		return n
	}
	deadline := time.Now().Add(2 * time.Minute)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for running() > 0 || len(at) > 0 || !drawn {
		if time.Now().After(deadline) {
			for i := 1; i <= 5; i++ {
				if !exited[i] {
					t.Logf("agency %d still running; its log:\n%s", i, agencies[i].stderr.String())
				}
			}
			t.Fatalf("agencies still running after 2 minutes (%d restarts)", restarts)
		}
		if len(at) > 0 && time.Since(began) >= at[0] {
			at = at[1:]
			restart("random instant")
			continue
		}
		st, err := status(metrics)
		if err == nil && st.FinishedCount > finished {
			finished = st.FinishedCount
			restart(fmt.Sprintf("after END %d", finished))
			continue
		}
		if err == nil && !drawn && st.LastDraw != nil {
			drawn = true
			restart("after the draw")
			continue
		}
		<-tick.C
	}
	if restarts < 10 {
		t.Fatalf("%d restarts: the run ended before the test could stop the central often enough", restarts)
	}
	// An agency run again after the draw (and a restart) prints the same
	// winners and sends nothing again.
	again := startAgency(t, bins["agency"], addr, testenv.AgencyFile(dir, 1), 1)
	if err := <-again.done; err != nil {
		t.Errorf("agency 1 run again after the draw: %v\n%s", err, again.stderr.String())
	}
	agencies = append(agencies, again)
	if err := central.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("final central: %v", err)
	}

	for k := 1; k <= 6; k++ {
		a, i := agencies[k], k
		if k == 6 {
			i = 1 // the re-run
		} else if err := exitErr[i]; err != nil {
			t.Errorf("agency %d exited with %v\n%s", i, err, a.stderr.String())
			continue
		}
		bets := testenv.ReadAgencyFile(t, testenv.AgencyFile(dir, i), i)
		want := testenv.Winners(bets)
		list := "none"
		if len(want) > 0 {
			list = strings.Join(want, ";")
		}
		line := fmt.Sprintf("agency %d round 1 winners (%d): %s", i, len(want), list)
		if got := strings.TrimSpace(a.out.String()); got != line {
			t.Errorf("agency %d printed %q, want %q", i, got, line)
		}
	}
	stored := testenv.ByAgency(testenv.ReadStore(t, store))
	total := 0
	for i := 1; i <= 5; i++ {
		want := testenv.ReadAgencyFile(t, testenv.AgencyFile(dir, i), i)
		total += len(stored[i])
		if !slices.Equal(stored[i], want) {
			t.Errorf("agency %d: the store holds %d bets, want its %d exactly once in file order", i, len(stored[i]), len(want))
		}
	}
	t.Logf("%s: %d restarts (%d after ENDs, draw seen %v); %d bets stored once each", sig, restarts, finished, drawn, total)
}
