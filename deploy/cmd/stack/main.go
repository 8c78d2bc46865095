// Command stack runs the loteria Compose stack for the Makefile (make up, down, reset, logs, ps).
//
//	stack [--dir deploy/out] [--docker docker] up [generator settings...] [--profile load]
//	stack [--dir deploy/out] down | reset | ps | logs [SERVICE]
//
// up checks for a Docker engine and Compose v2 first and says what to do when either is missing
// (and that `make demo` runs the same programs without Docker). It then starts the stack in --dir:
// without settings, the one there, whatever it was generated with (or, when there is none, a new
// one with the defaults); with settings, it generates one only when there is none or the one there
// has exactly those settings, and otherwise refuses, saying what differs: it never overwrites a
// stack generated with other settings, nor a compose file written or edited by hand. It waits
// until every service is healthy and prints the URLs, with the host ports Docker reports.
//
// down stops the stack and keeps its data (the store, Prometheus's and Alertmanager's volumes);
// reset removes them too.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/loteria/loteria/deploy/compose"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		var ee *exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		fmt.Fprintln(os.Stderr, "stack:", err)
		os.Exit(1)
	}
}

// exitError passes a docker command's exit status through (logs, ps).
type exitError struct{ code int }

func (e *exitError) Error() string { return "exit status " + strconv.Itoa(e.code) }

// Defaults of the health wait.
const (
	defaultWait = 5 * time.Minute
	pollEvery   = 2 * time.Second
)

type stack struct {
	docker string
	dir    string
	wait   time.Duration
	poll   time.Duration
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

func (s *stack) file() string { return filepath.Join(s.dir, "docker-compose.yaml") }

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("stack", flag.ContinueOnError)
	fs.SetOutput(stderr)
	s := &stack{stdin: stdin, stdout: stdout, stderr: stderr}
	fs.StringVar(&s.dir, "dir", "deploy/out", "the stack's directory (its docker-compose.yaml)")
	fs.StringVar(&s.docker, "docker", "docker", "the docker CLI")
	fs.DurationVar(&s.wait, "wait", defaultWait, "how long up waits for every service to be healthy")
	fs.DurationVar(&s.poll, "poll", pollEvery, "how often up asks for the services' health")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return errors.New("want a command: up, down, reset, ps or logs")
	}
	cmd, rest := fs.Arg(0), fs.Args()[1:]
	switch cmd {
	case "up":
		return s.up(ctx, rest)
	case "down", "reset":
		if len(rest) > 0 {
			return fmt.Errorf("%s takes no arguments, got %v", cmd, rest)
		}
		return s.down(ctx, cmd == "reset")
	case "ps":
		return s.passthrough(ctx, "ps", rest)
	case "logs":
		return s.passthrough(ctx, "logs", append([]string{"-f", "--tail", "200"}, rest...))
	default:
		return fmt.Errorf("unknown command %q: want up, down, reset, ps or logs", cmd)
	}
}

// noDocker ends every message about a missing piece.
const noDocker = "Without Docker, `make demo` runs the same programs on loopback, and `make test` runs them under a real Prometheus, Alertmanager and Jaeger."

// checkDocker finds the docker CLI, a reachable engine and Compose v2, or says what to do.
func (s *stack) checkDocker(ctx context.Context) error {
	if _, err := exec.LookPath(s.docker); err != nil {
		return fmt.Errorf("Docker not found (no %q on PATH). The stack needs Docker Engine with the Compose v2 plugin: install Docker Engine (https://docs.docker.com/engine/install/) or Docker Desktop. %s", s.docker, noDocker)
	}
	if out, err := s.output(ctx, "info", "--format", "{{.ServerVersion}}"); err != nil {
		return fmt.Errorf("the Docker engine is not reachable (docker info: %s). Start it (sudo systemctl start docker, or open Docker Desktop) and check that your user may use it (the docker group, or DOCKER_HOST). %s", firstLine(out, err), noDocker)
	}
	out, err := s.output(ctx, "compose", "version", "--short")
	if err != nil {
		return fmt.Errorf("Docker Compose v2 is missing (docker compose version: %s). Install the Compose plugin (the docker-compose-plugin package, or https://docs.docker.com/compose/install/); the old docker-compose v1 is not supported. %s", firstLine(out, err), noDocker)
	}
	v := strings.TrimPrefix(strings.TrimSpace(out), "v")
	major, _, _ := strings.Cut(v, ".")
	if n, err := strconv.Atoi(major); err != nil || n < 2 {
		return fmt.Errorf("Docker Compose %q is too old: the stack needs Compose v2 or later (the `docker compose` plugin). %s", strings.TrimSpace(out), noDocker)
	}
	return nil
}

// output runs docker with args and returns its stdout (stderr on failure).
func (s *stack) output(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.docker, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return errb.String() + out.String(), err
	}
	return out.String(), nil
}

func firstLine(out string, err error) string {
	line, _, _ := strings.Cut(strings.TrimSpace(out), "\n")
	if line == "" {
		return err.Error()
	}
	return line
}

// compose runs `docker compose -f FILE args...` attached to our output.
func (s *stack) compose(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, s.docker, append([]string{"compose", "-f", s.file()}, args...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = s.stdin, s.stdout, s.stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return &exitError{code: ee.ExitCode()}
	}
	return err
}

func (s *stack) passthrough(ctx context.Context, sub string, args []string) error {
	if err := s.checkDocker(ctx); err != nil {
		return err
	}
	if _, err := os.Stat(s.file()); err != nil {
		return fmt.Errorf("no stack in %s (make up generates and starts one)", s.dir)
	}
	return s.compose(ctx, append([]string{sub}, args...)...)
}

// ensure makes sure a compose file for the asked settings is there, or explains why not.
// It returns the stack's settings, whether the generator wrote it, and the profile asked for.
func (s *stack) ensure(args []string) (_ compose.Settings, ours bool, profile string, _ error) {
	var o compose.Options
	fs := flag.NewFlagSet("stack up", flag.ContinueOnError)
	fs.SetOutput(s.stderr)
	certsCmd := compose.RegisterFlags(fs, &o)
	fs.StringVar(&profile, "profile", "", "compose profile to start too (load)")
	if err := fs.Parse(args); err != nil {
		return compose.Settings{}, false, "", err
	}
	if fs.NArg() > 0 {
		return compose.Settings{}, false, "", fmt.Errorf("unexpected arguments %v", fs.Args())
	}
	given := 0
	fs.Visit(func(f *flag.Flag) {
		if f.Name != "profile" && f.Name != "root" {
			given++
		}
	})
	if *certsCmd != "" {
		o.CertsCommand = strings.Fields(*certsCmd)
	}
	if o.Agencies == 0 {
		o.Agencies = 5
	}
	o.Output = s.file()
	st, err := compose.Inspect(o.Output)
	if err != nil {
		return compose.Settings{}, false, "", err
	}
	if st.Exists && given == 0 {
		if st.Stamp == nil {
			fmt.Fprintf(s.stdout, "using %s as it is (not written by the generator)\n", o.Output)
			return compose.Settings{}, false, profile, nil
		}
		if st.Edited {
			fmt.Fprintf(s.stdout, "using %s as it is (edited since it was generated with %s)\n", o.Output, st.Stamp.Settings.Summary())
		} else {
			fmt.Fprintf(s.stdout, "using the stack in %s (%s)\n", s.dir, st.Stamp.Settings.Summary())
		}
		return st.Stamp.Settings, true, profile, nil
	}
	plan, err := compose.NewPlan(o)
	if err != nil {
		return compose.Settings{}, false, "", err
	}
	want := plan.Settings()
	if st.Exists {
		switch {
		case st.Stamp == nil:
			return want, false, "", fmt.Errorf("%s was not written by the generator: make up does not replace it. `make up` without settings starts it as it is; `make compose ... FORCE=1` replaces it", o.Output)
		case st.Edited:
			return want, false, "", fmt.Errorf("%s was edited since it was generated: make up does not replace it. `make up` without settings starts it as it is; `make compose ... FORCE=1` replaces it", o.Output)
		}
		if diff := st.Stamp.Settings.Diff(want); len(diff) > 0 {
			return want, false, "", fmt.Errorf("the stack in %s was generated with other settings (%s), and make up never replaces it. Run `make up` alone to start it as it is, or `make compose` with the new settings to replace it first (its data volumes are kept; `make reset` removes them)", s.dir, strings.Join(diff, "; "))
		}
	}
	if err := plan.Write(false); err != nil {
		return want, false, "", err
	}
	compose.Report(s.stdout, s.stderr, plan, st)
	if missing := plan.MissingData(); len(missing) > 0 {
		return want, false, "", fmt.Errorf("%d data files are missing (first %s): go run ./services/cmd/gendata --agencies %d --out %s", len(missing), missing[0].Path, plan.Options.Agencies, plan.Options.GeneratedDataDir)
	}
	return want, true, profile, nil
}

func (s *stack) up(ctx context.Context, args []string) error {
	if err := s.checkDocker(ctx); err != nil {
		return err
	}
	settings, ours, profile, err := s.ensure(args)
	if err != nil {
		return err
	}
	if profile == compose.LoadProfile && ours && settings.LoadAgencies == 0 {
		return fmt.Errorf("this stack has no load profile (it was generated in %s mode or with --no-load): generate a continuous stack with one, e.g. `make compose FORCE=1 MODE=%s`, then `make up PROFILE=%s`", settings.Mode, compose.ModeContinuous, compose.LoadProfile)
	}
	upArgs := []string{"up", "-d", "--build", "--remove-orphans"}
	if profile != "" {
		upArgs = append([]string{"--profile", profile}, upArgs...)
	}
	if err := s.compose(ctx, upArgs...); err != nil {
		return fmt.Errorf("docker compose up failed (%v): see the output above; `make logs` shows the services' logs", err)
	}
	if err := s.waitHealthy(ctx); err != nil {
		return err
	}
	s.printURLs(ctx, settings, ours)
	return nil
}

// container is one line of `docker compose ps --format json`.
type container struct {
	Service  string `json:"Service"`
	State    string `json:"State"`
	Health   string `json:"Health"`
	ExitCode int    `json:"ExitCode"`
}

// parsePS reads `docker compose ps --format json`: a JSON array (Compose before 2.21) or one
// object per line (since).
func parsePS(out string) ([]container, error) {
	out = strings.TrimSpace(out)
	if out == "" {
		return nil, nil
	}
	if strings.HasPrefix(out, "[") {
		var cs []container
		if err := json.Unmarshal([]byte(out), &cs); err != nil {
			return nil, fmt.Errorf("docker compose ps: %w", err)
		}
		return cs, nil
	}
	var cs []container
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var c container
		if err := json.Unmarshal([]byte(line), &c); err != nil {
			return nil, fmt.Errorf("docker compose ps: %w", err)
		}
		cs = append(cs, c)
	}
	return cs, sc.Err()
}

// waitHealthy polls the services until every one runs (and is healthy when it has a
// healthcheck), or one failed, or the wait is over.
func (s *stack) waitHealthy(ctx context.Context) error {
	deadline := time.Now().Add(s.wait)
	last := ""
	for {
		out, err := s.output(ctx, "compose", "-f", s.file(), "ps", "-a", "--format", "json")
		if err != nil {
			return fmt.Errorf("docker compose ps: %s", firstLine(out, err))
		}
		cs, err := parsePS(out)
		if err != nil {
			return err
		}
		var waiting, failed []string
		for _, c := range cs {
			switch {
			case c.State == "exited" && c.ExitCode == 0:
				// a one-shot agency that had its winners and lingered, or the load run
			case c.State == "exited" || c.State == "dead" || c.Health == "unhealthy":
				failed = append(failed, fmt.Sprintf("%s (%s, exit %d, health %q)", c.Service, c.State, c.ExitCode, c.Health))
			case c.State != "running" || (c.Health != "" && c.Health != "healthy"):
				st := c.State
				if c.Health != "" {
					st += ", " + c.Health
				}
				waiting = append(waiting, c.Service+" ("+st+")")
			}
		}
		slices.Sort(waiting)
		if len(failed) > 0 {
			return fmt.Errorf("the stack did not come up: %s. `make logs SERVICE=<name>` shows why; `make down` stops the rest", strings.Join(failed, "; "))
		}
		if len(cs) > 0 && len(waiting) == 0 {
			return nil
		}
		if now := strings.Join(waiting, ", "); now != last {
			fmt.Fprintf(s.stdout, "waiting for %s\n", now)
			last = now
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the stack is not healthy after %s: still waiting for %s. `make ps` and `make logs` show why", s.wait, strings.Join(waiting, ", "))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(s.poll):
		}
	}
}

// hostPort asks Docker where a container port is published.
func (s *stack) hostPort(ctx context.Context, hp compose.HostPort) string {
	out, err := s.output(ctx, "compose", "-f", s.file(), "port", hp.Service, strconv.Itoa(hp.Container))
	if addr := strings.TrimSpace(out); err == nil && addr != "" && !strings.HasSuffix(addr, ":0") {
		addr = strings.Replace(addr, "0.0.0.0:", "127.0.0.1:", 1)
		return addr
	}
	return "127.0.0.1:" + strconv.Itoa(hp.Default)
}

// urlNotes says what a user finds at each URL.
var urlNotes = map[string]string{
	compose.GrafanaService:      "dashboards Lotería central (home) and Lotería agencies; anonymous viewer",
	compose.PrometheusService:   "/alerts (rules and their state), /targets (what is scraped)",
	compose.AlertmanagerService: "alerts that fire; each also logged by alertlog (make logs SERVICE=alertlog)",
	compose.JaegerService:       "traces: service loteria-agency, operation agency.send_batch",
}

func (s *stack) printURLs(ctx context.Context, settings compose.Settings, ours bool) {
	what := "loteria is up"
	if ours {
		what += " (" + settings.Summary() + ")"
	}
	fmt.Fprintln(s.stdout, what+":")
	tls := ours && settings.TLS
	for _, hp := range compose.HostPorts(tls) {
		addr := s.hostPort(ctx, hp)
		name := hp.Service
		if note, ok := urlNotes[hp.Service]; ok {
			fmt.Fprintf(s.stdout, "  %-13s http://%-22s %s\n", name, addr, note)
			continue
		}
		fmt.Fprintf(s.stdout, "  %-13s %-29s %s\n", name, addr, hp.What)
	}
	fmt.Fprintln(s.stdout, "make logs follows every service (SERVICE=alertlog: the alerts); make down stops the stack and keeps its data; make reset removes the data.")
	if ours && settings.LoadAgencies > 0 {
		fmt.Fprintf(s.stdout, "The load profile (%d agencies) starts with: make up PROFILE=%s\n", settings.LoadAgencies, compose.LoadProfile)
	}
}

func (s *stack) down(ctx context.Context, reset bool) error {
	if _, err := os.Stat(s.file()); err != nil {
		fmt.Fprintf(s.stdout, "no stack in %s: nothing to stop\n", s.dir)
		return nil
	}
	if err := s.checkDocker(ctx); err != nil {
		return err
	}
	// The load profile's service too, should it run.
	args := []string{"--profile", compose.LoadProfile, "down", "--remove-orphans"}
	if reset {
		args = append(args, "--volumes")
	}
	if err := s.compose(ctx, args...); err != nil {
		return fmt.Errorf("docker compose down failed (%v): see the output above", err)
	}
	vols := []string{compose.ProjectName + "-" + compose.CentralVolume, compose.ProjectName + "-" + compose.PrometheusVolume, compose.ProjectName + "-" + compose.AlertmanagerVolume}
	if reset {
		fmt.Fprintf(s.stdout, "stopped the stack and removed its data (volumes %s): the next make up starts from an empty store\n", strings.Join(vols, ", "))
		return nil
	}
	fmt.Fprintf(s.stdout, "stopped the stack; its data is kept (volumes %s): the next make up resumes the store and its rounds. make reset removes the data.\n", strings.Join(vols, ", "))
	return nil
}
