package stack

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/loteria/loteria/internal/testenv"
)

// ProcessSpec says how to start a program.
type ProcessSpec struct {
	// Name labels the process in failure output ("central", "agency-3").
	Name string
	Path string
	Args []string
	// Env is added to a minimal environment (PATH, HOME, TMPDIR, TZ,
	// LANG, LC_ALL); nothing else of the test's environment is passed.
	Env []string
	// Dir is the working directory; default a fresh temporary one, so no
	// stray config.yaml is picked up.
	Dir string
}

// Process is a started program. Its stdout and stderr are kept in memory;
// it is killed (SIGKILL) when the test ends if it is still running, and a
// failed test logs the tail of its output.
type Process struct {
	Name string

	cmd    *exec.Cmd
	done   chan struct{}
	err    error // Wait's result, read after done
	stdout testenv.Buffer
	stderr testenv.Buffer
}

// LogTail is how much of a process's stdout and stderr a failed test logs.
const LogTail = 16 << 10

// StartProcess starts spec's program.
func StartProcess(tb testing.TB, spec ProcessSpec) *Process {
	tb.Helper()
	if spec.Name == "" {
		spec.Name = spec.Path
	}
	if spec.Dir == "" {
		spec.Dir = tb.TempDir()
	}
	p := &Process{Name: spec.Name, done: make(chan struct{})}
	cmd := testenv.Child(exec.Command(spec.Path, spec.Args...))
	cmd.Dir = spec.Dir
	cmd.Env = append(baseEnv(), spec.Env...)
	cmd.Stdout = &p.stdout
	cmd.Stderr = &p.stderr
	cmd.WaitDelay = 5 * time.Second // bound the output copy should a child keep the pipes
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start %s: %v", spec.Name, err)
	}
	p.cmd = cmd
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	tb.Cleanup(func() {
		if p.Running() {
			p.cmd.Process.Kill()
			<-p.done
		}
		if tb.Failed() {
			tb.Logf("--- %s (%s), stdout:\n%s\n--- %s, stderr:\n%s", p.Name, p.state(),
				tail(p.Stdout(), LogTail), p.Name, tail(p.Stderr(), LogTail))
		}
	})
	return p
}

// Pid is the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Stdout is everything the process wrote to stdout so far.
func (p *Process) Stdout() string { return p.stdout.String() }

// Stderr is everything the process wrote to stderr so far (the loteria
// programs' logs).
func (p *Process) Stderr() string { return p.stderr.String() }

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Running reports whether the process has not exited yet.
func (p *Process) Running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// ExitErr is the process's exit status as exec reports it (nil for exit
// code 0); call it once Done is closed.
func (p *Process) ExitErr() error {
	<-p.done
	return p.err
}

// Wait waits at most timeout for the process to exit by itself and returns
// its exit status; it does not stop it.
func (p *Process) Wait(timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.done:
		return p.err
	case <-t.C:
		return fmt.Errorf("%s still running after %s", p.Name, timeout)
	}
}

// Stop sends SIGTERM and waits at most grace for the exit, then kills the
// process. It returns the exit status, or an error saying it had to be
// killed.
func (p *Process) Stop(grace time.Duration) error {
	if !p.Running() {
		return p.err
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	if err := p.Wait(grace); err == nil || !p.Running() {
		return err
	}
	p.cmd.Process.Kill()
	<-p.done
	return fmt.Errorf("%s did not exit within %s of SIGTERM: killed", p.Name, grace)
}

func (p *Process) state() string {
	if p.Running() {
		return fmt.Sprintf("pid %d, running", p.Pid())
	}
	if p.err == nil {
		return fmt.Sprintf("pid %d, exit 0", p.Pid())
	}
	return fmt.Sprintf("pid %d, %v", p.Pid(), p.err)
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[len(s)-n:]
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return "[...]\n" + s
}
