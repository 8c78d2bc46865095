// Package scripts tests scripts/demo.sh and scripts/bench-official.sh as a
// user runs them: real processes on loopback, real ports, real files.
package scripts

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/loteria/loteria/internal/testenv"
)

// env is what every script run gets: only what the tools need, so a
// developer's SERVER_PORT, METRICS_ADDR or OTEL_* never leak in, and a
// TMPDIR of the test's own, so the scripts' work directories can be
// checked for removal.
func env(tmp string, extra ...string) []string {
	e := []string{"TMPDIR=" + tmp, "LANG=C.UTF-8"}
	for _, k := range []string{"PATH", "HOME", "GOCACHE", "GOMODCACHE", "GOPATH", "GOFLAGS", "GOTOOLCHAIN", "CI"} {
		if v, ok := os.LookupEnv(k); ok {
			e = append(e, k+"="+v)
		}
	}
	return append(e, extra...)
}

// script is one run of a script, started by start.
type script struct {
	cmd   *exec.Cmd
	lines chan string // stdout, line by line; closed at EOF
	done  chan struct{}
	err   error // the script's exit, valid after done
	// outs reach EOF when every holder of the pipes has closed them: the
	// script, and any process it left behind.
	outs           sync.WaitGroup
	mu             sync.Mutex
	stdout, stderr strings.Builder
}

// start runs scripts/name with env in its own process group. Its output
// goes through pipes of the test's own (not exec's copying), so the
// script's exit is seen when the script exits, even if it left a process
// holding them. ctx bounds the run; the test's cleanup kills the group if
// the script is still running.
func start(t *testing.T, ctx context.Context, name string, env []string, args ...string) *script {
	t.Helper()
	cmd := exec.CommandContext(ctx, "bash", append([]string{filepath.Join(testenv.RepoRoot(t), "scripts", name)}, args...)...)
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	testenv.Child(cmd) // the script only: what it starts, its traps stop
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	s := &script{cmd: cmd, lines: make(chan string, 1024), done: make(chan struct{})}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = outW, errW
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	outW.Close()
	errW.Close()
	s.outs.Add(2)
	go func() {
		defer s.outs.Done()
		defer outR.Close()
		sc := bufio.NewScanner(outR)
		for sc.Scan() {
			s.mu.Lock()
			s.stdout.WriteString(sc.Text() + "\n")
			s.mu.Unlock()
			select {
			case s.lines <- sc.Text():
			default:
			}
		}
		close(s.lines)
	}()
	go func() {
		defer s.outs.Done()
		defer errR.Close()
		b := make([]byte, 4096)
		for {
			n, err := errR.Read(b)
			s.mu.Lock()
			s.stderr.Write(b[:n])
			s.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	go func() {
		s.err = cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		select {
		case <-s.done:
		default:
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-s.done
		}
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // anything it left in its group
	})
	return s
}

// wait waits for the script and returns its exit code; the output read so
// far is complete unless the script left a process holding its pipes.
func (s *script) wait(t *testing.T) int {
	t.Helper()
	<-s.done
	flushed := make(chan struct{})
	go func() { s.outs.Wait(); close(flushed) }()
	select {
	case <-flushed:
	case <-time.After(2 * time.Second):
		t.Errorf("the script exited but something it started still holds its output")
	}
	var ee *exec.ExitError
	switch {
	case s.err == nil:
		return 0
	case errors.As(s.err, &ee) && ee.Exited():
		return ee.ExitCode()
	}
	t.Fatalf("script did not exit by itself: %v\n%s", s.err, s.output())
	return -1
}

// await returns the first stdout line matching re, failing the test when
// the script ends or timeout passes first.
func (s *script) await(t *testing.T, re *regexp.Regexp, timeout time.Duration) []string {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case l, ok := <-s.lines:
			if !ok {
				t.Fatalf("script ended without printing a line matching %s\n%s", re, s.output())
			}
			if m := re.FindStringSubmatch(l); m != nil {
				return m
			}
		case <-timer.C:
			t.Fatalf("no line matching %s within %s\n%s", re, timeout, s.output())
		}
	}
}

// Stdout and Stderr are what the script printed so far.
func (s *script) Stdout() string { s.mu.Lock(); defer s.mu.Unlock(); return s.stdout.String() }
func (s *script) Stderr() string { s.mu.Lock(); defer s.mu.Unlock(); return s.stderr.String() }

func (s *script) output() string {
	return "stdout:\n" + s.Stdout() + "stderr:\n" + s.Stderr()
}

// alive reports whether pid is a running process (not a zombie).
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(f) > 0 && f[0] != "Z"
}

// processesOf lists the running processes whose executable is path.
func processesOf(t *testing.T, path string) []int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err == nil && exe == path && alive(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// emptyDir fails unless dir has no entries left.
func emptyDir(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		t.Errorf("left behind in TMPDIR: %s", e.Name())
	}
}

// writeScript writes an executable shell script.
func writeScript(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte("#!/usr/bin/env bash\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
}

// listen holds a loopback port for the test's duration.
func listen(t *testing.T, addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err == nil {
		t.Cleanup(func() { ln.Close() })
	}
	return ln, err
}

// gendata writes agency files with the real program.
func gendata(t *testing.T, bin, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command(bin, append(args, "--out", dir)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gendata %q: %v\n%s", args, err, out)
	}
}
