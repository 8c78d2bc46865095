package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loteria/loteria/deploy/compose"
	"github.com/loteria/loteria/internal/testenv"
)

// fakeDocker is a docker CLI stand-in: it records every call in $FAKE_LOG and answers as the
// FAKE_* variables say, like an engine that is down, a CLI without the Compose plugin, or a
// stack whose services report their health.
const fakeDocker = `#!/bin/sh
echo "$*" >> "$FAKE_LOG"
case "$1" in
info)
	if [ "$FAKE_ENGINE" = down ]; then
		echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?" >&2
		exit 1
	fi
	echo 28.2.2 ;;
compose)
	case "$2" in
	version)
		case "$FAKE_COMPOSE" in
		missing) echo "docker: unknown command: docker compose" >&2; exit 1 ;;
		v1) echo "1.29.2" ;;
		*) echo "2.29.1" ;;
		esac ;;
	-f)
		shift 3
		while [ "$1" = --profile ]; do shift 2; done
		case "$1" in
		up) echo "up: started" ;;
		ps) cat "$FAKE_PS" ;;
		port) echo "127.0.0.1:1$3" ;;
		down) echo "down: stopped" ;;
		logs) echo "logs" ;;
		*) echo "fake docker: unexpected compose command $*" >&2; exit 3 ;;
		esac ;;
	*) echo "fake docker: unexpected compose call $*" >&2; exit 3 ;;
	esac ;;
*) echo "fake docker: unexpected call $*" >&2; exit 3 ;;
esac
`

// healthy is what `docker compose ps --format json` says of a healthy stack (one object per
// line, as Compose 2.21 and later print it).
const healthy = `{"Service":"central","State":"running","Health":"healthy","ExitCode":0}
{"Service":"agency1","State":"running","Health":"healthy","ExitCode":0}
{"Service":"prometheus","State":"running","Health":"healthy","ExitCode":0}
{"Service":"grafana","State":"running","Health":"healthy","ExitCode":0}
`

type fake struct {
	dir, bin, log, ps string
}

func newFake(t *testing.T, ps string) fake {
	t.Helper()
	dir := t.TempDir()
	f := fake{dir: dir, bin: filepath.Join(dir, "bin"), log: filepath.Join(dir, "calls.log"), ps: filepath.Join(dir, "ps.json")}
	if err := os.MkdirAll(f.bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(f.bin, "docker"), []byte(fakeDocker), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.ps, []byte(ps), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("FAKE_LOG", f.log)
	t.Setenv("FAKE_PS", f.ps)
	return f
}

func (f fake) calls(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(f.log)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

// runStack runs the command with the fake docker first on PATH (or, with noDocker, with a PATH
// that has no docker at all).
func runStack(t *testing.T, f fake, noDocker bool, stackDir string, args ...string) (string, error) {
	t.Helper()
	path := f.bin + string(os.PathListSeparator) + os.Getenv("PATH")
	if noDocker {
		path = t.TempDir() // nothing in it
	}
	t.Setenv("PATH", path)
	var out bytes.Buffer
	all := append([]string{"--dir", stackDir, "--wait", "3s", "--poll", "10ms"}, args...)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := run(ctx, all, strings.NewReader(""), &out, &out)
	return out.String(), err
}

func TestUpChecksDocker(t *testing.T) {
	root := testenv.RepoRoot(t)
	tests := []struct {
		name     string
		noDocker bool
		env      map[string]string
		want     []string // in the error
		calls    string   // the last docker call made, "" for none
	}{
		{"no docker on PATH", true, nil, []string{"Docker not found", "docs.docker.com/engine/install", "make demo"}, ""},
		{"engine down", false, map[string]string{"FAKE_ENGINE": "down"}, []string{"Docker engine is not reachable", "Cannot connect to the Docker daemon", "systemctl start docker", "make demo"}, "info --format {{.ServerVersion}}"},
		{"no compose plugin", false, map[string]string{"FAKE_COMPOSE": "missing"}, []string{"Docker Compose v2 is missing", "docker-compose-plugin", "make demo"}, "compose version --short"},
		{"compose v1", false, map[string]string{"FAKE_COMPOSE": "v1"}, []string{"too old", "Compose v2", "make demo"}, "compose version --short"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, healthy)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			stackDir := filepath.Join(t.TempDir(), "out")
			out, err := runStack(t, f, tt.noDocker, stackDir, "up", "--root", root)
			if err == nil {
				t.Fatalf("up succeeded:\n%s", out)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			calls := strings.Split(strings.TrimSpace(f.calls(t)), "\n")
			if got := calls[len(calls)-1]; got != tt.calls {
				t.Errorf("last docker call %q, want %q (calls: %q)", got, tt.calls, calls)
			}
			if _, err := os.Stat(stackDir); err == nil {
				t.Errorf("the stack was generated although Docker is not usable")
			}
		})
	}
}

func TestUpGeneratesWaitsAndPrintsURLs(t *testing.T) {
	root := testenv.RepoRoot(t)
	f := newFake(t, healthy)
	stackDir := filepath.Join(t.TempDir(), "out")
	out, err := runStack(t, f, false, stackDir, "up", "--root", root)
	if err != nil {
		t.Fatalf("up: %v\n%s", err, out)
	}
	file := filepath.Join(stackDir, "docker-compose.yaml")
	st, err := compose.Inspect(file)
	if err != nil || st.Stamp == nil || st.Edited {
		t.Fatalf("no stack generated at %s: %+v %v", file, st, err)
	}
	if st.Stamp.Settings.Agencies != 5 || st.Stamp.Settings.Mode != compose.ModeContinuous {
		t.Errorf("generated with %+v, want the defaults (5 agencies, continuous)", st.Stamp.Settings)
	}
	calls := f.calls(t)
	for _, want := range []string{
		"compose -f " + file + " up -d --build --remove-orphans",
		"compose -f " + file + " ps -a --format json",
		"compose -f " + file + " port grafana 3000",
	} {
		if !strings.Contains(calls, want) {
			t.Errorf("no docker call %q in:\n%s", want, calls)
		}
	}
	// The URLs are the host ports Docker reports (the fake answers 1<port>), not the defaults.
	for _, want := range []string{"http://127.0.0.1:13000", "http://127.0.0.1:19090", "http://127.0.0.1:19093", "http://127.0.0.1:116686", "make down", "make reset"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestOneShotStackHasNoLoadProfile: `make up MODE=oneshot` draws its round once the stack's
// agencies have said END (the central admits only them), and asking a one-shot stack for the
// load profile is refused before Docker starts anything.
func TestOneShotStackHasNoLoadProfile(t *testing.T) {
	root := testenv.RepoRoot(t)
	f := newFake(t, healthy)
	stackDir := filepath.Join(t.TempDir(), "out")
	data := t.TempDir() // what `make up MODE=oneshot` has gendata write first
	for i := 1; i <= 5; i++ {
		if err := os.WriteFile(filepath.Join(data, compose.DataFileName(i)), []byte("Ana,Pérez,30904465,1999-03-17,7574\r\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := runStack(t, f, false, stackDir, "up", "--root", root, "--mode", compose.ModeOneShot, "--generated-data-dir", data); err != nil {
		t.Fatalf("up --mode oneshot: %v\n%s", err, out)
	}
	st, err := compose.Inspect(filepath.Join(stackDir, "docker-compose.yaml"))
	if err != nil || st.Stamp == nil {
		t.Fatalf("no stack generated: %+v %v", st, err)
	}
	if got := st.Stamp.Settings; got.Agencies != 5 || got.LoadAgencies != 0 {
		t.Errorf("one-shot stack generated with %+v, want 5 agencies and no load profile", got)
	}
	before := f.calls(t)
	out, err := runStack(t, f, false, stackDir, "up", "--root", root, "--profile", compose.LoadProfile)
	if err == nil || !strings.Contains(err.Error(), "no load profile") {
		t.Fatalf("up --profile load on a one-shot stack: err %v, want one that says it has no load profile\n%s", err, out)
	}
	if after := f.calls(t); strings.Count(after, " up -d ") != strings.Count(before, " up -d ") {
		t.Errorf("docker compose up ran although the profile was refused:\n%s", after)
	}
}

func TestUpWaitsForHealth(t *testing.T) {
	root := testenv.RepoRoot(t)
	tests := []struct {
		name, ps string
		want     string // in the error; "" means up succeeds
	}{
		{"a service still starting", strings.Replace(healthy, `"Health":"healthy"`, `"Health":"starting"`, 1), "not healthy after 3s: still waiting for central (running, starting)"},
		{"a service unhealthy", strings.Replace(healthy, `"Health":"healthy"`, `"Health":"unhealthy"`, 1), "did not come up: central"},
		{"a service exited with an error", strings.Replace(healthy, `"State":"running","Health":"healthy","ExitCode":0}`, `"State":"exited","Health":"","ExitCode":1}`, 1), "did not come up: central (exited, exit 1"},
		{"a one-shot agency done", healthy + `{"Service":"agency2","State":"exited","Health":"","ExitCode":0}` + "\n", ""},
		{"JSON array (Compose before 2.21)", `[{"Service":"central","State":"running","Health":"healthy"},{"Service":"alertlog","State":"running","Health":""}]`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, tt.ps)
			out, err := runStack(t, f, false, filepath.Join(t.TempDir(), "out"), "up", "--root", root)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("up: %v\n%s", err, out)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one containing %q\n%s", err, tt.want, out)
			}
		})
	}
}

// TestUpNeverOverwrites: `up` with settings never replaces a stack generated with others, nor a
// compose file written or edited by hand; `up` alone starts what is there.
func TestUpNeverOverwrites(t *testing.T) {
	root := testenv.RepoRoot(t)
	f := newFake(t, healthy)
	stackDir := filepath.Join(t.TempDir(), "out")
	file := filepath.Join(stackDir, "docker-compose.yaml")
	if out, err := runStack(t, f, false, stackDir, "up", "--root", root, "--agencies", "7"); err != nil {
		t.Fatalf("up --agencies 7: %v\n%s", err, out)
	}
	generated, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	unchanged := func(what string) {
		t.Helper()
		now, err := os.ReadFile(file)
		if err != nil || !bytes.Equal(now, generated) {
			t.Errorf("%s changed the compose file", what)
		}
	}

	out, err := runStack(t, f, false, stackDir, "up", "--root", root, "--agencies", "5")
	if err == nil || !strings.Contains(err.Error(), "agencies: 7 -> 5") || !strings.Contains(err.Error(), "never replaces") {
		t.Errorf("up --agencies 5 over a stack of 7: %v\n%s", err, out)
	}
	unchanged("up with other settings")

	out, err = runStack(t, f, false, stackDir, "up", "--root", root)
	if err != nil || !strings.Contains(out, "using the stack in "+stackDir+" (7 agencies") {
		t.Errorf("up alone: %v\n%s", err, out)
	}
	unchanged("up alone")

	if out, err := runStack(t, f, false, stackDir, "up", "--root", root, "--agencies", "7"); err != nil {
		t.Errorf("up with the same settings: %v\n%s", err, out)
	}
	unchanged("up with the same settings")

	edited := append(append([]byte(nil), generated...), []byte("# my change\n")...)
	if err := os.WriteFile(file, edited, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = runStack(t, f, false, stackDir, "up", "--root", root, "--agencies", "7")
	if err == nil || !strings.Contains(err.Error(), "edited since it was generated") {
		t.Errorf("up over an edited file: %v\n%s", err, out)
	}
	if now, _ := os.ReadFile(file); !bytes.Equal(now, edited) {
		t.Errorf("up replaced an edited compose file")
	}
	out, err = runStack(t, f, false, stackDir, "up", "--root", root)
	if err != nil || !strings.Contains(out, "as it is (edited since") {
		t.Errorf("up alone over an edited file: %v\n%s", err, out)
	}
}

func TestDownKeepsDataResetRemovesIt(t *testing.T) {
	root := testenv.RepoRoot(t)
	f := newFake(t, healthy)
	stackDir := filepath.Join(t.TempDir(), "out")
	out, err := runStack(t, f, false, stackDir, "down")
	if err != nil || !strings.Contains(out, "nothing to stop") {
		t.Errorf("down without a stack: %v\n%s", err, out)
	}
	if out, err := runStack(t, f, false, stackDir, "up", "--root", root); err != nil {
		t.Fatalf("up: %v\n%s", err, out)
	}
	file := filepath.Join(stackDir, "docker-compose.yaml")
	out, err = runStack(t, f, false, stackDir, "down")
	if err != nil || !strings.Contains(out, "its data is kept") || !strings.Contains(out, "loteria-central-data") {
		t.Errorf("down: %v\n%s", err, out)
	}
	if !strings.Contains(f.calls(t), "compose -f "+file+" --profile load down --remove-orphans\n") {
		t.Errorf("down did not run docker compose down without --volumes:\n%s", f.calls(t))
	}
	out, err = runStack(t, f, false, stackDir, "reset")
	if err != nil || !strings.Contains(out, "removed its data") {
		t.Errorf("reset: %v\n%s", err, out)
	}
	if !strings.Contains(f.calls(t), "compose -f "+file+" --profile load down --remove-orphans --volumes\n") {
		t.Errorf("reset did not remove the volumes:\n%s", f.calls(t))
	}
}

// TestMakeUpWithoutDocker runs `make up` itself with the fake docker on PATH: the Makefile passes
// its variables and the engine check stops it before anything is generated.
func TestMakeUpWithoutDocker(t *testing.T) {
	if testing.Short() {
		t.Skip("runs make and go run")
	}
	if _, err := exec.LookPath("make"); err != nil {
		testenv.Unavailable(t, "make not installed")
	}
	root := testenv.RepoRoot(t)
	f := newFake(t, healthy)
	t.Setenv("FAKE_ENGINE", "down")
	t.Setenv("PATH", f.bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	stackDir := filepath.Join(t.TempDir(), "out")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "make", "-s", "-C", root, "up", "STACK_DIR="+stackDir, "AGENCIES=3")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("make up succeeded with the engine down:\n%s", out)
	}
	for _, want := range []string{"Docker engine is not reachable", "make demo"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("make up output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "unknown shorthand flag") {
		t.Errorf("make up still reaches docker compose without a check:\n%s", out)
	}
	if _, err := os.Stat(stackDir); err == nil {
		t.Errorf("make up generated a stack although the engine is down")
	}
}
