package stack

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/loteria/loteria/internal/testenv"
)

// SystemOptions configure a run of the central and its agencies.
type SystemOptions struct {
	// Agencies is N (default 5, the official data's agencies).
	Agencies int
	// DataDir holds agency-1.csv .. agency-N.csv (default OfficialDataDir).
	DataDir string
	// Env is added to both the central's and every agency's environment
	// (OTEL_*, LOGGING_LEVEL, ...); CentralEnv and AgencyEnv to one side
	// only. They come after the harness's own variables, so they win.
	Env, CentralEnv, AgencyEnv []string
	// AgencyArgs are command-line flags of every agency (e.g. --rate).
	AgencyArgs []string
	// Linger is the agencies' CLI_LINGER: how long they keep /metrics up
	// after their winners. 0 means DefaultLinger; negative means none
	// (the agencies exit as soon as they have their winners).
	Linger time.Duration
	// Timeout bounds the wait for every agency's winners (default 2m).
	Timeout time.Duration
	// Binaries are prebuilt "central" and "agency" programs; by default
	// they are built into a temporary directory.
	Binaries map[string]string
}

// DefaultLinger keeps an agency's final counters scrapeable well past the
// test's queries; the harness kills the agencies when the test ends.
const DefaultLinger = 2 * time.Minute

// System is a central and its agencies running as processes.
type System struct {
	Central *Process
	// CentralAddr is the agencies' TCP address of the central.
	CentralAddr string
	// CentralMetricsAddr serves the central's /metrics, /healthz, /readyz.
	CentralMetricsAddr string
	// StorePath is the central's bets file.
	StorePath string
	Agencies  []*Agency
	DataDir   string

	timeout time.Duration
	opts    SystemOptions
}

// Agency is one agency process.
type Agency struct {
	ID          int
	Process     *Process
	MetricsAddr string
	// WinnersCount is how many winners the agency received (-1 until
	// WaitWinners has seen them).
	WinnersCount int
	// Winners are the DNIs the agency printed on stdout (nil until it has
	// printed them; see WaitWinners).
	Winners []string
}

// RunSystem starts the system and waits until every agency has its
// winners (see WaitWinners).
func RunSystem(tb testing.TB, opts SystemOptions) *System {
	tb.Helper()
	s := StartSystem(tb, opts)
	s.WaitWinners(tb)
	return s
}

// StartSystem builds the programs (unless given), starts the central,
// waits for its /readyz, and starts the agencies; it does not wait for
// them.
func StartSystem(tb testing.TB, opts SystemOptions) *System {
	tb.Helper()
	s := PlanSystem(tb, opts)
	s.Start(tb)
	return s
}

// PlanSystem builds the programs (unless given) and picks the system's
// addresses without starting anything, so a Prometheus can be started with
// its targets (PrometheusOptions) before the system runs; then Start.
func PlanSystem(tb testing.TB, opts SystemOptions) *System {
	tb.Helper()
	if opts.Agencies <= 0 {
		opts.Agencies = 5
	}
	if opts.DataDir == "" {
		opts.DataDir = testenv.OfficialDataDir(tb)
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 2 * time.Minute
	}
	bins := opts.Binaries
	if bins["central"] == "" || bins["agency"] == "" {
		bins = testenv.BuildPrograms(tb, tb.TempDir(), "central", "agency")
	}
	opts.Binaries = bins
	dir := tb.TempDir()
	addrs := testenv.FreeAddrs(tb, 2+opts.Agencies)
	s := &System{
		CentralAddr:        addrs[0],
		CentralMetricsAddr: addrs[1],
		StorePath:          filepath.Join(dir, "bets.csv"),
		DataDir:            opts.DataDir,
		timeout:            opts.Timeout,
		opts:               opts,
	}
	for i := 1; i <= opts.Agencies; i++ {
		s.Agencies = append(s.Agencies, &Agency{ID: i, MetricsAddr: addrs[1+i], WinnersCount: -1})
	}
	return s
}

// Start starts the central, waits for its /readyz, and starts the agencies.
func (s *System) Start(tb testing.TB) {
	tb.Helper()
	s.StartCentral(tb)
	s.StartAgencies(tb)
}

// StartCentral starts the central and waits for its /readyz.
func (s *System) StartCentral(tb testing.TB) {
	tb.Helper()
	opts := s.opts
	bins := opts.Binaries
	host, port, _ := strings.Cut(s.CentralAddr, ":")
	env := []string{
		"SERVER_HOST=" + host, "SERVER_PORT=" + port,
		"CLIENT_COUNT=" + strconv.Itoa(opts.Agencies),
		"STORE_PATH=" + s.StorePath,
		"METRICS_ADDR=" + s.CentralMetricsAddr,
		"LOG_FORMAT=json", "LOGGING_LEVEL=INFO",
	}
	env = append(append(env, opts.Env...), opts.CentralEnv...)
	s.Central = StartProcess(tb, ProcessSpec{Name: "central", Path: bins["central"], Env: env})
	Poll(tb, 30*time.Second, "the central to be ready", func() error {
		if !s.Central.Running() {
			return fmt.Errorf("central exited: %v", s.Central.ExitErr())
		}
		return httpOK(context.Background(), "http://"+s.CentralMetricsAddr+"/readyz")
	})
}

// StartAgencies starts the agencies (after StartCentral).
func (s *System) StartAgencies(tb testing.TB) {
	tb.Helper()
	opts := s.opts
	bins := opts.Binaries
	linger := opts.Linger
	switch {
	case linger == 0:
		linger = DefaultLinger
	case linger < 0:
		linger = 0
	}
	for _, a := range s.Agencies {
		i := a.ID
		env := []string{
			"CLI_ID=" + strconv.Itoa(i),
			"CLI_SERVER_ADDRESS=" + s.CentralAddr,
			"CLI_DATA_PATH=" + testenv.AgencyFile(opts.DataDir, i),
			"METRICS_ADDR=" + a.MetricsAddr,
			"CLI_LINGER=" + linger.String(),
			"LOG_FORMAT=json", "CLI_LOG_LEVEL=INFO",
		}
		env = append(append(env, opts.Env...), opts.AgencyEnv...)
		a.Process = StartProcess(tb, ProcessSpec{Name: fmt.Sprintf("agency-%d", i), Path: bins["agency"], Args: opts.AgencyArgs, Env: env})
	}
}

// winnersLine is what an agency prints on stdout with its winners, one
// line per round: "agency <id> round <r> winners (<k>): <dni;...>" or
// "... (0): none".
var winnersLine = regexp.MustCompile(`(?m)^agency (\d+) (?:round \d+ )?winners \((\d+)\): (.*)$`)

// WaitWinners waits (at most SystemOptions.Timeout) until every agency has
// its winners, and fills in WinnersCount, and Winners when printed. An
// agency that exits without them fails the test at once.
//
// An agency has its winners when it prints them on stdout, or when it logs
// consulta_ganadores (result success): the agency prints the line only
// once its linger is over, while the log record comes before it.
func (s *System) WaitWinners(tb testing.TB) {
	tb.Helper()
	Poll(tb, s.timeout, "every agency's winners", func() error {
		var waiting []string
		for _, a := range s.Agencies {
			if err := a.parseWinners(); err != nil {
				tb.Fatal(err)
			}
			if a.WinnersCount >= 0 {
				continue
			}
			if !a.Process.Running() {
				tb.Fatalf("agency %d exited without its winners: %v", a.ID, a.Process.ExitErr())
			}
			waiting = append(waiting, strconv.Itoa(a.ID))
		}
		if len(waiting) > 0 {
			return fmt.Errorf("agencies %s do not have their winners", strings.Join(waiting, ", "))
		}
		return nil
	})
}

// PrintedWinners reports whether the agency has printed its winners line
// on stdout, parsing it into Winners.
func (a *Agency) PrintedWinners() (bool, error) {
	if err := a.parseWinners(); err != nil {
		return false, err
	}
	return a.Winners != nil, nil
}

// parseWinners fills Winners and WinnersCount from the agency's output so
// far.
func (a *Agency) parseWinners() error {
	if a.Winners == nil {
		if m := winnersLine.FindStringSubmatch(a.Process.Stdout()); m != nil {
			if m[1] != strconv.Itoa(a.ID) {
				return fmt.Errorf("agency %d printed winners as agency %s", a.ID, m[1])
			}
			w := []string{}
			if m[3] != "" && m[3] != "none" {
				w = strings.Split(m[3], ";")
			}
			if n, _ := strconv.Atoi(m[2]); n != len(w) {
				return fmt.Errorf("agency %d: winners line says %s winners but lists %d: %q", a.ID, m[2], len(w), m[0])
			}
			a.Winners, a.WinnersCount = w, len(w)
		}
	}
	if a.WinnersCount < 0 {
		for _, line := range strings.Split(a.Process.Stderr(), "\n") {
			if !strings.Contains(line, `"consulta_ganadores"`) {
				continue
			}
			var rec struct {
				Msg     string `json:"msg"`
				Result  string `json:"result"`
				Winners *int   `json:"cant_ganadores"`
			}
			if json.Unmarshal([]byte(line), &rec) != nil || rec.Msg != "consulta_ganadores" {
				continue
			}
			if rec.Result != "success" || rec.Winners == nil {
				return fmt.Errorf("agency %d: %s", a.ID, line)
			}
			a.WinnersCount = *rec.Winners
		}
	}
	return nil
}

// Targets are the scrape targets for StartPrometheus: job "central" and
// job "agency".
func (s *System) Targets() map[string][]string {
	t := map[string][]string{"central": {s.CentralMetricsAddr}}
	for _, a := range s.Agencies {
		t["agency"] = append(t["agency"], a.MetricsAddr)
	}
	return t
}

// PrometheusOptions are the scrape settings of the compose stack for this
// system: its targets, each agency's labelled agency="<id>", the agency
// job with honor_labels.
func (s *System) PrometheusOptions() PrometheusOptions {
	labels := map[string]map[string]string{}
	for _, a := range s.Agencies {
		labels[a.MetricsAddr] = map[string]string{"agency": strconv.Itoa(a.ID)}
	}
	return PrometheusOptions{Targets: s.Targets(), TargetLabels: labels, HonorLabels: []string{"agency"}}
}

// StopCentral sends the central SIGTERM and waits at most grace for it to
// exit (it flushes its spans then); it returns the exit status.
func (s *System) StopCentral(grace time.Duration) error {
	return s.Central.Stop(grace)
}
