package main

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/loteria/loteria/internal/testenv"
	"github.com/loteria/loteria/services/central"
)

// TestSIGTERMWhileWaiting: an agency waiting at the barrier stops at once
// on SIGTERM, says so, and exits non-zero (it has no winners to report).
func TestSIGTERMWhileWaiting(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the agency binary")
	}
	bin := testenv.BuildPrograms(t, t.TempDir(), "agency")["agency"]
	// Two agencies expected, one comes: the barrier holds this one.
	srv, err := central.New(central.Config{Address: "127.0.0.1:0", Agencies: 2, StorePath: filepath.Join(t.TempDir(), "bets.csv")}, central.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()
	defer func() { cancel(); <-served }()

	data := filepath.Join(t.TempDir(), "agency-1.csv")
	if err := os.WriteFile(data, []byte("Ana,Pérez,1,1990-01-01,7574\r\nLuis,Gómez,2,1991-02-03,5\r\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--id", "1", "--server", srv.Addr().String(), "--data", data, "--log-format", "json")
	cmd.Dir = t.TempDir()
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "OTEL_TRACES_EXPORTER=none"}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	// Wait until the agency has sent its bets and is waiting for winners.
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var log strings.Builder
	timeout := time.After(20 * time.Second)
	for waiting := false; !waiting; {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("agency exited early:\n%s", log.String())
			}
			log.WriteString(l + "\n")
			waiting = strings.Contains(l, `"msg":"bets sent"`)
		case <-timeout:
			t.Fatalf("agency never reached the barrier:\n%s", log.String())
		}
	}
	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for l := range lines {
		log.WriteString(l + "\n")
	}
	err = cmd.Wait()
	took := time.Since(start)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Errorf("exit: %v, want status 1", err)
	}
	if took > 5*time.Second {
		t.Errorf("agency took %s to stop after SIGTERM", took)
	}
	if !strings.Contains(log.String(), "interrupted: connection and file closed") {
		t.Errorf("agency did not log its stop:\n%s", log.String())
	}
}
