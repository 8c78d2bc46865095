package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/loteria/loteria/internal/testenv"
	"github.com/loteria/loteria/services/agency/agencytest"
	"github.com/loteria/loteria/services/internal/datagen"
	"github.com/loteria/loteria/services/internal/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newFake(t *testing.T, opts agencytest.Options) *agencytest.Central {
	t.Helper()
	c, err := agencytest.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// dataFile writes n generated bets for agency 1 (about one in twenty
// winning) and returns its path and its winners, read back by hand.
func dataFile(t *testing.T, n int) (string, []string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "agency-1.csv")
	if _, err := datagen.WriteFile(path, datagen.Options{Seed: 5, Agency: 1, WinnerRatio: 0.05}, n); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var winners []string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\r\n") {
		if f := strings.Split(line, ","); len(f) == 5 && f[4] == "7574" {
			winners = append(winners, f[2])
		}
	}
	return path, winners
}

// runAgency runs the program in process with a clean environment.
func runAgency(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	code, stdout, stderr, _ = runAgencyProcs(t, env, args...)
	return code, stdout, stderr
}

// runAgencyProcs is runAgency that also returns the GOMAXPROCS values the
// program set (the test process's own is left alone).
func runAgencyProcs(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string, set []int) {
	t.Helper()
	t.Chdir(t.TempDir()) // no config.yaml around
	var out, errb testenv.Buffer
	getenv := func(k string) string {
		if k == "OTEL_TRACES_EXPORTER" {
			return "none"
		}
		return env[k]
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	setProcs := func(n int) int {
		set = append(set, n)
		return 0
	}
	code = run(ctx, args, getenv, setProcs, &out, &errb)
	return code, out.String(), errb.String(), set
}

// TestProcs: an agency that waits for each ack runs on one P, unless the
// environment says otherwise; a pipelining one keeps the runtime's choice.
func TestProcs(t *testing.T) {
	path, winners := dataFile(t, 60)
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want []int
	}{
		{name: "stop-and-wait", args: []string{"--in-flight=1"}, want: []int{1}},
		{name: "stop-and-wait, seed protocol", args: []string{"--in-flight=1", "--protocol=seed"}, want: []int{1}},
		{name: "stop-and-wait, GOMAXPROCS set", env: map[string]string{"GOMAXPROCS": "2"}, args: []string{"--in-flight=1"}},
		{name: "pipelining", args: []string{"--in-flight=2"}},
		{name: "default window", args: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFake(t, agencytest.Options{})
			args := append([]string{"--id=1", "--server", fake.Addr(), "--data", path, "--batch-max=7"}, tt.args...)
			code, stdout, stderr, set := runAgencyProcs(t, tt.env, args...)
			if code != 0 || !strings.Contains(stdout, winnersLineFor(1, winners)) {
				t.Fatalf("exit %d, stdout:\n%s\nstderr:\n%s", code, stdout, stderr)
			}
			if fmt.Sprint(set) != fmt.Sprint(tt.want) {
				t.Errorf("GOMAXPROCS set to %v, want %v", set, tt.want)
			}
		})
	}
}

func winnersLineFor(round int, winners []string) string {
	list := "none"
	if len(winners) > 0 {
		list = strings.Join(winners, ";")
	}
	return fmt.Sprintf("agency 1 round %d winners (%d): %s", round, len(winners), list)
}

// TestExitCodes: 0 when every round's winners arrived and nothing was
// refused, 1 on failure or refused bets, 2 on a bad configuration; one
// winners line per round on stdout.
func TestExitCodes(t *testing.T) {
	path, winners := dataFile(t, 120)
	retry := []string{"--retry-base=1ms", "--retry-max=5ms"}
	tests := []struct {
		name       string
		opts       agencytest.Options
		args       []string
		wantCode   int
		wantStdout []string
		wantStderr []string
	}{
		{
			name: "one round", args: []string{"--data", path}, wantCode: 0,
			wantStdout: []string{winnersLineFor(1, winners)},
		},
		{
			name: "refused batch", args: []string{"--data", path, "--batch-max=20"}, wantCode: 1,
			opts: agencytest.Options{OnBatch: func(b agencytest.Batch) agencytest.Action {
				if b.From == 100 {
					return agencytest.Action{Reject: "line 2: bad date"}
				}
				return agencytest.Action{}
			}},
			wantStdout: []string{"agency 1 round 1 winners ("},
			// Line 2 of the batch from index 100: the file's line 102. The
			// central's words themselves are never repeated.
			wantStderr: []string{"20 bets refused", `"code":"invalid"`, `"file_line":102`},
		},
		{
			name: "retry budget spent", args: append([]string{"--data", path, "--retry-budget=200ms"}, retry...), wantCode: 1,
			opts: agencytest.Options{OnHello: func(agencytest.Conn, wire.Hello) agencytest.Action {
				return agencytest.Action{Reply: "error;busy: full", Close: true}
			}},
			wantStderr: []string{"gave up", "retry budget"},
		},
		{
			name: "seed server", args: []string{"--data", path}, wantCode: 1,
			opts: agencytest.Options{OnHello: func(agencytest.Conn, wire.Hello) agencytest.Action {
				return agencytest.Action{Reply: "error;Invalid batch format"}
			}},
			wantStderr: []string{"--protocol=seed"},
		},
		{name: "bad rounds", args: []string{"--data", path, "--rounds=-1"}, wantCode: 2, wantStderr: []string{"rounds"}},
		{name: "bad rate", args: []string{"--data", path, "--rate=fast"}, wantCode: 2, wantStderr: []string{"rate"}},
		// Retried for the whole retry budget (5 minutes) before it was a configuration error.
		{name: "server without a port", args: []string{"--data", path, "--server=nohostport"}, wantCode: 2, wantStderr: []string{"nohostport", "missing port", "host:port"}},
		{name: "id the wire cannot carry", args: []string{"--data", path, "--id=9999999999"}, wantCode: 2, wantStderr: []string{"9999999999", "999999999"}},
		{name: "missing file", args: []string{"--data", filepath.Join(t.TempDir(), "none.csv")}, wantCode: 1, wantStderr: []string{"none.csv"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFake(t, tt.opts)
			args := append([]string{"--id=1", "--server", fake.Addr(), "--log-format=json"}, tt.args...)
			code, stdout, stderr := runAgency(t, nil, args...)
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.wantCode, stdout, stderr)
			}
			for _, s := range tt.wantStdout {
				if !strings.Contains(stdout, s) {
					t.Errorf("stdout lacks %q:\n%s", s, stdout)
				}
			}
			for _, s := range tt.wantStderr {
				if !strings.Contains(stderr, s) {
					t.Errorf("stderr lacks %q:\n%s", s, stderr)
				}
			}
		})
	}
}

// TestRoundsAndRerun: two generated rounds print two lines; a re-run
// against the same central prints the same lines, sends no bet and exits 0.
func TestRoundsAndRerun(t *testing.T) {
	fake := newFake(t, agencytest.Options{})
	args := []string{"--id=1", "--server", fake.Addr(), "--round-data=generate", "--bets-per-round=700", "--rounds=2", "--data-seed=9"}
	code, first, stderr := runAgency(t, nil, args...)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	// The oracle: each round's generated bets, read back as the file
	// gendata writes for that round's seed.
	var want []string
	for r := range 2 {
		path := filepath.Join(t.TempDir(), "round.csv")
		if _, err := datagen.WriteFile(path, datagen.Options{Seed: 9 + uint64(r)*0x9e3779b97f4a7c15, Agency: 1}, 700); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(path)
		var w []string
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\r\n") {
			if f := strings.Split(line, ","); f[4] == "7574" {
				w = append(w, f[2])
			}
		}
		want = append(want, winnersLineFor(r+1, w))
	}
	if got := strings.Split(strings.TrimSpace(first), "\n"); !slicesEqual(got, want) {
		t.Fatalf("stdout\n%s\nwant\n%s", first, strings.Join(want, "\n"))
	}
	sent := len(fake.Batches())
	code, again, stderr := runAgency(t, nil, args...)
	if code != 0 {
		t.Fatalf("re-run: exit %d:\n%s", code, stderr)
	}
	if strings.TrimSpace(again) != want[1] {
		t.Errorf("re-run printed\n%s\nwant the last round's line\n%s", again, want[1])
	}
	if len(fake.Batches()) != sent {
		t.Errorf("re-run sent %d batches", len(fake.Batches())-sent)
	}
}

func slicesEqual(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestSeedLogLines: with LOG_FORMAT=seed the winners record is exactly the
// seed's line: nothing follows the count.
func TestSeedLogLines(t *testing.T) {
	path, winners := dataFile(t, 80)
	fake := newFake(t, agencytest.Options{})
	code, _, stderr := runAgency(t, map[string]string{"LOG_FORMAT": "seed"}, "--id=1", "--server", fake.Addr(), "--data", path)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	re := regexp.MustCompile(`(?m)^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d INFO     action: consulta_ganadores \| result: success \| cant_ganadores: (\d+)$`)
	m := re.FindAllStringSubmatch(stderr, -1)
	if len(m) != 1 || m[0][1] != fmt.Sprint(len(winners)) {
		t.Errorf("want one seed line with cant_ganadores: %d, got %q in:\n%s", len(winners), m, stderr)
	}
}

// TestSIGTERMWhileWaiting: an agency waiting at the barrier stops at once
// on SIGTERM, says so, and exits non-zero (it has no winners to report).
func TestSIGTERMWhileWaiting(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the agency binary")
	}
	bin := testenv.BuildPrograms(t, t.TempDir(), "agency")["agency"]
	// Two agencies expected, one comes: the barrier holds this one.
	fake := newFake(t, agencytest.Options{Agencies: 2})
	data := filepath.Join(t.TempDir(), "agency-1.csv")
	if err := os.WriteFile(data, []byte("Ana,Pérez,1,1990-01-01,7574\r\nLuis,Gómez,2,1991-02-03,5\r\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := testenv.Child(exec.Command(bin, "--id", "1", "--server", fake.Addr(), "--data", data, "--log-format", "json"))
	cmd.Dir = t.TempDir()
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "OTEL_TRACES_EXPORTER=none"}
	var stderr testenv.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	testenv.Eventually(t, 20*time.Second, "the agency waiting at the barrier", func() bool { return fake.Waiting() == 1 })
	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	took := time.Since(start)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Errorf("exit: %v, want status 1", err)
	}
	if took > 5*time.Second {
		t.Errorf("agency took %s to stop after SIGTERM", took)
	}
	if !strings.Contains(stderr.String(), "interrupted: connection and file closed") {
		t.Errorf("agency did not log its stop:\n%s", stderr.String())
	}
	if !strings.Contains(stderr.String(), "waiting for the draw of round 1") {
		t.Errorf("agency did not say it was waiting for the draw:\n%s", stderr.String())
	}
}
