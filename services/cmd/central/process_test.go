package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/loteria/loteria/internal/testenv"
	"github.com/loteria/loteria/observability"
	"github.com/loteria/loteria/services/agency"
)

// These tests run the real central binary as a process, because what they
// check (SIGKILL, SIGTERM, exit codes) only exists for processes.

type centralProc struct {
	cmd     *exec.Cmd
	addr    string
	metrics string
	done    chan error
	log     *strings.Builder
	logMu   *sync.Mutex
}

func startProc(t *testing.T, bin, store string, agencies int, extraEnv ...string) *centralProc {
	t.Helper()
	addrs := testenv.FreeAddrs(t, 2)
	addr, metrics := addrs[0], addrs[1]
	host, port, _ := strings.Cut(addr, ":")
	cmd := testenv.Child(exec.Command(bin))
	cmd.Env = append(os.Environ(),
		"SERVER_HOST="+host, "SERVER_PORT="+port, fmt.Sprintf("CLIENT_COUNT=%d", agencies),
		"STORE_PATH="+store, "METRICS_ADDR="+metrics, "LOG_FORMAT=json", "LOGGING_LEVEL=INFO",
		"OTEL_TRACES_EXPORTER=none")
	cmd.Env = append(cmd.Env, extraEnv...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &centralProc{cmd: cmd, addr: addr, metrics: metrics, done: make(chan error, 1), log: &strings.Builder{}, logMu: &sync.Mutex{}}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.logMu.Lock()
			p.log.WriteString(sc.Text() + "\n")
			p.logMu.Unlock()
		}
		p.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("central log:\n%s", p.logs())
		}
	})
	testenv.Eventually(t, 20*time.Second, "the central to be ready", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return observability.Healthcheck(ctx, "http://"+metrics+"/readyz") == nil
	})
	return p
}

func (p *centralProc) logs() string {
	p.logMu.Lock()
	defer p.logMu.Unlock()
	return p.log.String()
}

// acked counts, per agency, the bets acknowledged so far.
type acked struct{ n [6]atomic.Int64 }

// stream runs the five official agencies against addr with small batches,
// counting acknowledged bets; it returns when they all end (with errors,
// when the central goes away).
func stream(ctx context.Context, t *testing.T, dir, addr string, a *acked, batch int) []error {
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := 1; i <= 5; i++ {
		wg.Go(func() {
			f, err := agency.OpenFileStream(testenv.AgencyFile(dir, i), i)
			if err != nil {
				errs[i] = err
				return
			}
			// DialAttempts 1: the agency stops at its first failure (it
			// would otherwise resume against the restarted central).
			c, err := agency.NewClient(agency.Options{
				Agency: i, Address: addr, MaxBets: batch, InFlight: 4, Timeout: 10 * time.Second, DialAttempts: 1,
			}, agency.Deps{OnAck: func(_ time.Duration, bets int) { a.n[i].Add(int64(bets)) }})
			if err != nil {
				errs[i] = err
				return
			}
			_, errs[i] = c.Run(ctx, f)
		})
	}
	wg.Wait()
	return errs
}

// checkPrefixes checks that the store holds, for every agency, exactly a
// prefix of its file made of whole batches, at least as long as what was
// acknowledged: nothing acknowledged lost, nothing twice, no partial batch.
func checkPrefixes(t *testing.T, dir, store string, a *acked, batch int) int {
	t.Helper()
	stored := testenv.ByAgency(testenv.ReadStore(t, store))
	total := 0
	for i := 1; i <= 5; i++ {
		file := testenv.ReadAgencyFile(t, testenv.AgencyFile(dir, i), i)
		got := stored[i]
		total += len(got)
		ack := int(a.n[i].Load())
		if len(got) < ack {
			t.Errorf("agency %d: store holds %d bets, but %d were acknowledged", i, len(got), ack)
		}
		if len(got) > len(file) {
			t.Fatalf("agency %d: store holds %d bets, its file only %d", i, len(got), len(file))
		}
		for j := range got {
			if got[j] != file[j] {
				t.Fatalf("agency %d: stored bet %d is %v, want %v (a bet lost, repeated or out of order)", i, j, got[j], file[j])
			}
		}
		if len(got)%batch != 0 && len(got) != len(file) {
			t.Errorf("agency %d: store holds %d bets, not a whole number of %d-bet batches: a partial batch", i, len(got), batch)
		}
	}
	return total
}

func buildCentral(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the central binary")
	}
	return testenv.BuildPrograms(t, t.TempDir(), "central")["central"]
}

// TestCrashSafety kills the central with SIGKILL while five agencies
// stream, restarts it on the same store, and checks every acknowledged
// batch is there exactly once and no partial batch is.
func TestCrashSafety(t *testing.T) {
	dir := testenv.OfficialDataDir(t)
	bin := buildCentral(t)
	const batch = 25
	for round := 1; round <= 3; round++ {
		t.Run(fmt.Sprintf("round%d", round), func(t *testing.T) {
			store := filepath.Join(t.TempDir(), "bets.csv")
			p := startProc(t, bin, store, 5)
			var a acked
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			streamDone := make(chan []error, 1)
			go func() { streamDone <- stream(ctx, t, dir, p.addr, &a, batch) }()
			// Kill at a different point each round, while bets flow.
			threshold := int64(round * 4000)
			testenv.Eventually(t, 30*time.Second, "bets to be acknowledged", func() bool {
				var sum int64
				for i := 1; i <= 5; i++ {
					sum += a.n[i].Load()
				}
				return sum >= threshold
			})
			if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			<-p.done
			errs := <-streamDone
			failed := 0
			for _, err := range errs[1:] {
				if err != nil {
					failed++
				}
			}
			if failed == 0 {
				t.Fatal("every agency finished before the kill: the test did not crash anything")
			}
			// Restart on the same store: recovery runs on open.
			q := startProc(t, bin, store, 5)
			if err := q.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			if err := <-q.done; err != nil {
				t.Fatalf("restarted central: %v", err)
			}
			n := checkPrefixes(t, dir, store, &a, batch)
			t.Logf("killed after %d+ acked bets; %d bets recovered", threshold, n)
		})
	}
}

// TestGracefulShutdown sends SIGTERM during ingestion: the central exits 0
// within its bound and no acknowledged bet is lost.
func TestGracefulShutdown(t *testing.T) {
	dir := testenv.OfficialDataDir(t)
	bin := buildCentral(t)
	const batch = 10
	const bound = 5 * time.Second
	store := filepath.Join(t.TempDir(), "bets.csv")
	p := startProc(t, bin, store, 5, "SHUTDOWN_TIMEOUT="+bound.String())
	var a acked
	streamDone := make(chan []error, 1)
	go func() { streamDone <- stream(t.Context(), t, dir, p.addr, &a, batch) }()
	testenv.Eventually(t, 30*time.Second, "bets to be acknowledged", func() bool {
		return a.n[1].Load() >= 2000
	})
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var exitErr error
	select {
	case exitErr = <-p.done:
	case <-time.After(bound + 5*time.Second):
		t.Fatalf("central still running %s after SIGTERM (bound %s)", bound+5*time.Second, bound)
	}
	took := time.Since(start)
	if exitErr != nil {
		var ee *exec.ExitError
		if errors.As(exitErr, &ee) {
			t.Fatalf("central exited with %d after SIGTERM, want 0", ee.ExitCode())
		}
		t.Fatal(exitErr)
	}
	if took > bound+time.Second {
		t.Errorf("shutdown took %s, bound is %s", took, bound)
	}
	<-streamDone
	n := checkPrefixes(t, dir, store, &a, batch)
	logs := p.logs()
	for _, want := range []string{`"resource":"listeners"`, `"resource":"connections"`, `"resource":"store"`, `"msg":"central stopped"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("shutdown log lacks %s", want)
		}
	}
	t.Logf("SIGTERM → exit in %s; %d bets stored, all acknowledged ones among them", took, n)
}
