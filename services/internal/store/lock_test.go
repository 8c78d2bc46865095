package store

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loteria/loteria/internal/testenv"
	"github.com/loteria/loteria/services/internal/store/fsys"
)

// helperEnv makes the test binary a helper process that holds a store:
// it opens the store named by the variable, says "ready", and closes it
// when its standard input closes.
const helperEnv = "LOTERIA_STORE_LOCK_HELPER"

func lockHelper() int {
	s, err := Open(os.Getenv(helperEnv), Options{})
	if err != nil {
		fmt.Println("open:", err)
		return 1
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	if err := s.Close(); err != nil {
		fmt.Println("close:", err)
		return 1
	}
	return 0
}

func TestLockSameProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bets.csv")
	s := openT(t, path, Options{})
	must(t)(submit(s, 1, 0, 0, 2))
	before := sums(t, filepath.Dir(path))
	_, err := Open(path, Options{})
	var le *LockedError
	if !errors.As(err, &le) || le.Pid != os.Getpid() || le.Path != path {
		t.Fatalf("second Open: %v, want a LockedError naming pid %d", err, os.Getpid())
	}
	if msg := err.Error(); !strings.Contains(msg, path) || !strings.Contains(msg, fmt.Sprint(os.Getpid())) {
		t.Fatalf("message %q names neither the path nor the pid", msg)
	}
	sameSums(t, before, sums(t, filepath.Dir(path)))
	closeT(t, s)
	s = openT(t, path, Options{}) // released on Close
	closeT(t, s)
}

func TestLockAcrossProcesses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bets.csv")
	s := openT(t, path, Options{})
	must(t)(submit(s, 1, 0, 0, 2))
	closeT(t, s)

	cmd := testenv.Child(exec.Command(os.Args[0], "-test.run=^$"))
	cmd.Env = append(os.Environ(), helperEnv+"="+path)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		cmd.Wait()
	}()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("helper said %q (%v)", line, err)
	}
	before := sums(t, filepath.Dir(path))
	_, err = Open(path, Options{})
	var le *LockedError
	if !errors.As(err, &le) || le.Pid != cmd.Process.Pid {
		t.Fatalf("Open while another process holds the store: %v, want a LockedError naming pid %d", err, cmd.Process.Pid)
	}
	sameSums(t, before, sums(t, filepath.Dir(path)))
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper: %v", err)
	}
	s = openT(t, path, Options{})
	closeT(t, s)
	if got := s.Recovered().Agencies[1].Mark; got != 2 {
		t.Fatalf("after the helper: mark %d", got)
	}
}

// TestOSLockIsPerOpen: the real flock refuses a second holder in the
// same process, which is what makes a second Open fail.
func TestOSLockIsPerOpen(t *testing.T) {
	name := filepath.Join(t.TempDir(), "x.lock")
	f, err := fsys.OS{}.Lock(name, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (fsys.OS{}).Lock(name, 0o600); !errors.Is(err, fsys.ErrLocked) {
		t.Fatalf("second lock: %v", err)
	}
	f.Close()
	g, err := fsys.OS{}.Lock(name, 0o600)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	g.Close()
}
