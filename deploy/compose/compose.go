// Package compose generates the Docker Compose stack of loteria for N agencies: the central, the
// agencies agency1..agencyN, Prometheus, Alertmanager and its log receiver, Grafana and Jaeger on
// one network, a load-tool service in the `load` profile, plus the files the stack mounts that
// depend on the settings (one config file per agency, the Prometheus scrape targets of the
// agencies, certificates for mutual TLS), an example .env listing the host ports, and a stamp
// recording the settings the stack was generated with (see Stamp).
//
// The default stack is a living system: the central holds round after round (ROUNDS=0, a round's
// sales close at ROUND_CUTOFF) and every agency loops over rounds, sending fresh generated bets at
// a set rate that fills most of a round, so every dashboard panel has data within a minute of
// `make up`. ModeOneShot is the seed's run (one round, each agency sends its file once, paced so
// Prometheus scrapes it).
//
// The output is deterministic: the same options and the same data files on disk give the same
// bytes. Nothing is built into the images but the binaries: configs, data, certificates,
// dashboards and the Prometheus, Alertmanager and Grafana configuration are mounted, so changing
// them needs no rebuild.
package compose

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Pinned images of the stack's third-party services: current supported releases, checked against
// each project's release notes (deploy/README.md says where and when; the tags were not pulled
// here, the registries being out of reach).
const (
	PrometheusImage   = "prom/prometheus:v3.16.0"
	AlertmanagerImage = "prom/alertmanager:v0.35.0"
	GrafanaImage      = "grafana/grafana:13.2.1"
	JaegerImage       = "jaegertracing/jaeger:2.21.0"
)

// Images built from deploy/Dockerfile.
const (
	CentralImage  = "loteria/central:local"
	AgencyImage   = "loteria/agency:local"
	LoadtestImage = "loteria/loadtest:local"
	AlertlogImage = "loteria/alertlog:local"
)

// Modes of the stack.
const (
	// ModeContinuous: rounds until stopped, each closed by its cut-off; agencies loop over rounds
	// with generated data.
	ModeContinuous = "continuous"
	// ModeOneShot: the seed's single round; each agency sends its data file once.
	ModeOneShot = "oneshot"
)

// Defaults of the options, documented in deploy/README.md.
const (
	// DefaultRoundCutoff closes a round's sales about every minute.
	DefaultRoundCutoff = 60 * time.Second
	// DefaultRate is an agency's send rate in continuous mode (bets/s), and DefaultBetsPerRound
	// its bets per round: 45 s of sending in a 60 s round, then END and the draw.
	DefaultRate         = 20.0
	DefaultBetsPerRound = 900
	// DefaultBatchMax in continuous mode: one batch a second at DefaultRate.
	DefaultBatchMax = 20
	// DefaultOneShotRate paces the one-shot run: an official file (~15,700 bets) in ~30 s, which
	// Prometheus scrapes about six times at a 5 s interval.
	DefaultOneShotRate     = 500.0
	DefaultOneShotBatchMax = 100
	// DefaultLoadAgencies, DefaultLoadRate (total bets/s) and DefaultLoadDuration are the load
	// profile's run.
	DefaultLoadAgencies = 100
	DefaultLoadRate     = 2000.0
	DefaultLoadDuration = 10 * time.Minute
	// DefaultLinger keeps a finished agency's /metrics up for 12 scrapes at the stack's 5 s
	// interval, so Prometheus has its final values.
	DefaultLinger = 60 * time.Second
	// DefaultSampling is the share of traces recorded (OTEL_TRACES_SAMPLER_ARG) in a stack
	// of up to FullySampledAgencies agencies (its own and the load profile's); a larger one
	// records about SampledAgencies agencies' worth (SampledAgencies/N, two significant
	// digits): 1,000 agencies traced in full cost a saturated central 16% of its
	// throughput, at 0.1 nothing measurable (docs/BENCHMARKS.md §7).
	DefaultSampling      = 1.0
	FullySampledAgencies = 200
	SampledAgencies      = 100
)

// Trace export settings of every loteria process in the stack (OTEL_BSP_*). The SDK's defaults
// (a queue of 2,048 spans, batches of 512 every 5 s) drop most spans of a 100-agency run
// silently; a queue of 65,536 holds the spans of ~20,000 batches (three spans each) while the
// exporter sends batches of 2,048 every second. A span held in the queue takes about 1 KiB, so a
// full queue is ~64 MiB: the central's memory limit leaves room for it.
const (
	BSPMaxQueueSize       = 65536
	BSPMaxExportBatchSize = 2048
	BSPScheduleDelay      = time.Second
	BSPExportTimeout      = 10 * time.Second
)

// Service names, ports and paths inside the containers.
const (
	ProjectName = "loteria"
	NetworkName = "loteria"

	CentralService      = "central"
	PrometheusService   = "prometheus"
	AlertmanagerService = "alertmanager"
	AlertlogService     = "alertlog"
	GrafanaService      = "grafana"
	JaegerService       = "jaeger"
	LoadtestService     = "loadtest"

	// LoadProfile is the compose profile of the load-tool service.
	LoadProfile = "load"

	CentralPort         = 12345 // plaintext (the seed's protocol, the load tool, a seed client)
	CentralTLSPort      = 12346 // mutual TLS (the stack's agencies when TLS is on)
	CentralMetricsPort  = 9464
	AgencyMetricsPort   = 9465
	AlertlogPort        = 9466
	LoadtestMetricsPort = 9470
	PrometheusPort      = 9090
	AlertmanagerPort    = 9093
	GrafanaPort         = 3000
	JaegerUIPort        = 16686
	JaegerOTLPGRPCPort  = 4317
	JaegerOTLPHTTPPort  = 4318
	JaegerMetricsPort   = 8888
	JaegerHealthPort    = 13133

	CentralBinary      = "/usr/local/bin/central"
	AgencyBinary       = "/usr/local/bin/agency"
	LoadtestBinary     = "/usr/local/bin/loadtest"
	AlertlogBinary     = "/usr/local/bin/alertlog"
	CentralDataDir     = "/data"
	CentralStore       = "/data/bets.csv"
	AgencyConfig       = "/app/config.yaml"
	AgencyDataDir      = "/app/.data"
	CertsDir           = "/certs"
	PrometheusConf     = "/etc/prometheus/prometheus.yml"
	PrometheusRules    = "/etc/prometheus/rules"
	PrometheusSD       = "/etc/prometheus/targets"
	PrometheusData     = "/prometheus"
	AlertmanagerConf   = "/etc/alertmanager/alertmanager.yml"
	AlertmanagerData   = "/alertmanager"
	GrafanaProv        = "/etc/grafana/provisioning"
	GrafanaDash        = "/etc/grafana/dashboards"
	AgencyTargetsFile  = "agencies.json" // the file_sd file prometheus.yml reads, in PrometheusSD
	CentralVolume      = "central-data"
	PrometheusVolume   = "prometheus-data"
	AlertmanagerVolume = "alertmanager-data"

	// CentralShutdownTimeout is the central's bound on graceful shutdown (SHUTDOWN_TIMEOUT);
	// the stop grace periods leave room above it before Docker sends SIGKILL.
	CentralShutdownTimeout = 10 * time.Second
	CentralStopGrace       = 20 * time.Second
	AgencyStopGrace        = 15 * time.Second
)

// Host ports: each published port is "${LOTERIA_BIND:-127.0.0.1}:${<Var>:-<Default>}:<port>", so
// a user moves one that collides with a .env file beside the compose file or a variable in the
// shell, without generating again.
type HostPort struct {
	Var       string // e.g. LOTERIA_GRAFANA_PORT
	Default   int
	Service   string
	Container int
	What      string
}

// BindVar is the variable naming the host address the ports are published on (loopback unless
// the user says otherwise).
const BindVar = "LOTERIA_BIND"

// HostPorts lists the ports a stack publishes; TLS adds the central's TLS port.
func HostPorts(tls bool) []HostPort {
	ports := []HostPort{
		{"LOTERIA_GRAFANA_PORT", GrafanaPort, GrafanaService, GrafanaPort, "Grafana (dashboards, anonymous viewer)"},
		{"LOTERIA_PROMETHEUS_PORT", PrometheusPort, PrometheusService, PrometheusPort, "Prometheus (queries, targets, rules, alerts)"},
		{"LOTERIA_ALERTMANAGER_PORT", AlertmanagerPort, AlertmanagerService, AlertmanagerPort, "Alertmanager (firing alerts, silences)"},
		{"LOTERIA_JAEGER_PORT", JaegerUIPort, JaegerService, JaegerUIPort, "Jaeger UI (traces)"},
		{"LOTERIA_CENTRAL_PORT", CentralPort, CentralService, CentralPort, "central, plaintext (a seed client or bin/agency from the host)"},
	}
	if tls {
		ports = append(ports, HostPort{"LOTERIA_CENTRAL_TLS_PORT", CentralTLSPort, CentralService, CentralTLSPort, "central, mutual TLS"})
	}
	return ports
}

// Repository paths the stack mounts, relative to the repository root.
const (
	DockerfilePath         = "deploy/Dockerfile"
	PrometheusConfigPath   = "deploy/prometheus/prometheus.yml"
	PrometheusRulesPath    = "deploy/prometheus/rules"
	AlertmanagerConfigPath = "deploy/alertmanager/alertmanager.yml"
	GrafanaProvPath        = "deploy/grafana/provisioning"
	DashboardsPath         = "dashboards"
	HomeDashboard          = "loteria-central.json"
)

// Files the generator writes beside the compose file.
const (
	StampFile      = "stack.json"
	EnvExampleFile = ".env.example"
)

// Options say what to generate. Zero values mean the documented defaults.
type Options struct {
	// Agencies is N, the number of agencies (N >= 1).
	Agencies int
	// Mode is ModeContinuous (default) or ModeOneShot.
	Mode string
	// Root is the repository root (default ".").
	Root string
	// Output is the compose file to write (default <Root>/deploy/out/docker-compose.yaml).
	Output string
	// GenDir receives the generated agency configs, Prometheus targets and certificates
	// (default: the output's directory, or <Root>/.data/compose when the output is in the root).
	GenDir string
	// DataDir holds data files agency-<i>.csv to use when present, e.g. the course's dataset
	// (../shared/datasets/tp0). One-shot mode only; empty: use generated data files.
	DataDir string
	// GeneratedDataDir is where generated data files agency-<i>.csv are in one-shot mode
	// (written by `go run ./services/cmd/gendata --agencies N --out DIR`; default <Root>/.data).
	GeneratedDataDir string
	// LogFormat is LOG_FORMAT for the loteria processes (default json).
	LogFormat string
	// LogLevel is LOGGING_LEVEL / CLI_LOG_LEVEL (default INFO).
	LogLevel string
	// BatchMaxAmount is batch.maxAmount in the agencies' config (default DefaultBatchMax, or
	// DefaultOneShotBatchMax in one-shot mode).
	BatchMaxAmount int
	// Linger is CLI_LINGER: how long an agency keeps /metrics up after its last winners
	// (default DefaultLinger).
	Linger time.Duration
	// RoundCutoff is the central's ROUND_CUTOFF in continuous mode (default DefaultRoundCutoff).
	RoundCutoff time.Duration
	// Rate is an agency's --rate in bets/s (default DefaultRate, DefaultOneShotRate one-shot).
	Rate float64
	// BetsPerRound is an agency's --bets-per-round in continuous mode (default
	// DefaultBetsPerRound).
	BetsPerRound int
	// LoadAgencies, LoadRate and LoadDuration configure the load profile's run (defaults
	// DefaultLoad*). Its agencies have ids N+1..N+LoadAgencies; the central admits them all.
	LoadAgencies int
	LoadRate     float64
	LoadDuration time.Duration
	// NoLoad leaves the load profile out (and the central admits N agencies only).
	NoLoad bool
	// TLS has the agencies reach the central over mutual TLS with certificates the generator
	// writes (see CertsCommand); the plaintext listener stays for the load tool and seed clients.
	TLS bool
	// CertsCommand writes certificates: it is run in Root with "--agencies", N, "--out", DIR,
	// "--hosts", HOSTS appended, when a certificate the stack mounts is missing (default
	// `go run ./services/cmd/certs`).
	CertsCommand []string
	// Sampling is OTEL_TRACES_SAMPLER_ARG of the trace-id ratio sampler (default
	// DefaultSampling, lower for more than FullySampledAgencies agencies).
	Sampling float64
}

func (o Options) withDefaults() (Options, error) {
	if o.Agencies < 1 {
		return o, fmt.Errorf("agencies must be at least 1, got %d", o.Agencies)
	}
	if o.Mode == "" {
		o.Mode = ModeContinuous
	}
	oneShot := false
	switch o.Mode {
	case ModeContinuous:
	case ModeOneShot:
		oneShot = true
	default:
		return o, fmt.Errorf("mode %q: want %s or %s", o.Mode, ModeContinuous, ModeOneShot)
	}
	if o.Root == "" {
		o.Root = "."
	}
	root, err := filepath.Abs(o.Root)
	if err != nil {
		return o, fmt.Errorf("root: %w", err)
	}
	o.Root = root
	abs := func(p, def string) (string, error) {
		if p == "" {
			return filepath.Join(root, def), nil
		}
		a, err := filepath.Abs(p)
		if err != nil {
			return "", fmt.Errorf("path %s: %w", p, err)
		}
		return a, nil
	}
	if o.Output, err = abs(o.Output, "deploy/out/docker-compose.yaml"); err != nil {
		return o, err
	}
	if o.GenDir == "" && filepath.Dir(o.Output) != root {
		o.GenDir = filepath.Dir(o.Output) // next to a compose file in its own directory (deploy/out)
	}
	if o.GenDir, err = abs(o.GenDir, ".data/compose"); err != nil {
		return o, err
	}
	if o.GeneratedDataDir, err = abs(o.GeneratedDataDir, ".data"); err != nil {
		return o, err
	}
	if o.DataDir != "" {
		if !oneShot {
			return o, fmt.Errorf("a data directory (%s) is read in %s mode only: continuous agencies generate fresh bets every round; add --mode %s (MODE=%s)", o.DataDir, ModeOneShot, ModeOneShot, ModeOneShot)
		}
		if o.DataDir, err = abs(o.DataDir, ""); err != nil {
			return o, err
		}
	}
	if o.LogFormat == "" {
		o.LogFormat = "json"
	}
	switch o.LogFormat {
	case "json", "tint", "seed":
	default:
		return o, fmt.Errorf("log format %q: want json, tint or seed", o.LogFormat)
	}
	if o.LogLevel == "" {
		o.LogLevel = "INFO"
	}
	switch o.LogLevel = strings.ToUpper(o.LogLevel); o.LogLevel {
	case "DEBUG", "INFO", "WARN", "ERROR":
	default:
		return o, fmt.Errorf("log level %q: want DEBUG, INFO, WARN or ERROR", o.LogLevel)
	}
	defInt := func(v *int, def int, name string) error {
		if *v == 0 {
			*v = def
		}
		if *v < 1 {
			return fmt.Errorf("%s must be at least 1, got %d", name, *v)
		}
		return nil
	}
	defFloat := func(v *float64, def float64, name string) error {
		if *v == 0 {
			*v = def
		}
		if *v <= 0 {
			return fmt.Errorf("%s must be positive, got %g", name, *v)
		}
		return nil
	}
	defDur := func(v *time.Duration, def time.Duration, name string) error {
		if *v == 0 {
			*v = def
		}
		if *v < time.Second || *v%time.Second != 0 {
			return fmt.Errorf("%s must be a whole number of seconds, at least 1s, got %s", name, *v)
		}
		return nil
	}
	if oneShot {
		// The one-shot run is the seed's: one round with no cut-off, drawn when every agency
		// the central admits has said END. The load profile's agencies start only with
		// PROFILE=load, so admitting them held that draw for ever: a one-shot stack has no
		// load profile, and asking for one is an error rather than a stack that never draws.
		if !o.NoLoad && (o.LoadAgencies != 0 || o.LoadRate != 0 || o.LoadDuration != 0) {
			return o, fmt.Errorf("mode %s has no load profile: its one round is drawn only when every agency the central admits has said END, and the load profile's agencies would hold it; drop --load-agencies, --load-rate and --load-duration (LOAD_AGENCIES), or use --mode %s, whose rounds close at their cut-off", ModeOneShot, ModeContinuous)
		}
		o.NoLoad = true
	}
	batch, rate := DefaultBatchMax, DefaultRate
	if oneShot {
		batch, rate = DefaultOneShotBatchMax, DefaultOneShotRate
	}
	if err := errors.Join(
		defInt(&o.BatchMaxAmount, batch, "batch max amount"),
		defFloat(&o.Rate, rate, "rate"),
		defInt(&o.BetsPerRound, DefaultBetsPerRound, "bets per round"),
		defDur(&o.Linger, DefaultLinger, "linger"),
		defDur(&o.RoundCutoff, DefaultRoundCutoff, "round cut-off"),
		defInt(&o.LoadAgencies, DefaultLoadAgencies, "load agencies"),
		defFloat(&o.LoadRate, DefaultLoadRate, "load rate"),
		defDur(&o.LoadDuration, DefaultLoadDuration, "load duration"),
	); err != nil {
		return o, err
	}
	if o.NoLoad {
		o.LoadAgencies = 0
	}
	if o.Sampling == 0 {
		o.Sampling = DefaultSampling
		if n := o.AdmittedAgencies(); n > FullySampledAgencies {
			o.Sampling, _ = strconv.ParseFloat(strconv.FormatFloat(float64(SampledAgencies)/float64(n), 'g', 2, 64), 64)
		}
	}
	if o.Sampling < 0 || o.Sampling > 1 {
		return o, fmt.Errorf("sampling must be in (0, 1], got %g", o.Sampling)
	}
	if len(o.CertsCommand) == 0 {
		o.CertsCommand = []string{"go", "run", "./services/cmd/certs"}
	}
	return o, nil
}

// OneShot reports whether the options describe the one-shot run.
func (o Options) OneShot() bool { return o.Mode == ModeOneShot }

// AdmittedAgencies is the central's CLIENT_COUNT: the stack's agencies and the load profile's.
func (o Options) AdmittedAgencies() int { return o.Agencies + o.LoadAgencies }

// File is one file of a Plan.
type File struct {
	Path string // absolute
	Data []byte
	Mode os.FileMode
}

// DataFile says which bets file an agency reads (one-shot mode).
type DataFile struct {
	Agency int
	Path   string // absolute host path
	// Generated is true when the file is (to be) written by the gendata tool, false when it was
	// found in Options.DataDir.
	Generated bool
}

// Plan is everything Write writes.
type Plan struct {
	Options Options // with defaults applied, paths absolute
	Compose File
	// Configs are the agencies' config files, agency 1 first.
	Configs    []File
	Targets    File
	EnvExample File
	Stamp      File
	// Data lists the agencies' data files (one-shot mode only).
	Data []DataFile
	// Certs are the certificate files the stack mounts (TLS only), written by CertsCommand.
	Certs []string
}

// Files lists every file of the plan, the compose file first and the stamp last.
func (p *Plan) Files() []File {
	out := []File{p.Compose}
	out = append(out, p.Configs...)
	return append(out, p.Targets, p.EnvExample, p.Stamp)
}

// MissingData lists the generated data files that do not exist yet.
func (p *Plan) MissingData() []DataFile {
	var out []DataFile
	for _, d := range p.Data {
		if _, err := os.Stat(d.Path); d.Generated && err != nil {
			out = append(out, d)
		}
	}
	return out
}

// AgencyService is the compose service name of agency i.
func AgencyService(i int) string { return "agency" + strconv.Itoa(i) }

// DataFileName is the bets file name of agency i, in a data directory.
func DataFileName(i int) string { return "agency-" + strconv.Itoa(i) + ".csv" }

// ConfigFileName is the config file name of agency i, in GenDir/agencies.
func ConfigFileName(i int) string { return "agency-" + strconv.Itoa(i) + ".yaml" }

// CertsHostDir is where the stack's certificates are on the host.
func (p *Plan) CertsHostDir() string { return filepath.Join(p.Options.GenDir, "certs") }

// Certificate file names (services/internal/certs writes them).
const (
	CAFile         = "ca.pem"
	CentralCert    = "central.pem"
	CentralKey     = "central-key.pem"
	CentralTLSName = CentralService // the name the agencies verify the central's certificate for
)

// AgencyCert and AgencyKey are agency i's certificate and key file names.
func AgencyCert(i int) string { return "agency-" + strconv.Itoa(i) + ".pem" }
func AgencyKey(i int) string  { return "agency-" + strconv.Itoa(i) + "-key.pem" }

// CertHosts are the names and addresses the central's certificate is valid for: its service name
// inside the stack, and loopback for a client on the host.
var certHosts = []string{CentralService, "localhost", "127.0.0.1", "::1"}

// CertHosts returns the SANs of the central's certificate.
func CertHosts() []string { return append([]string(nil), certHosts...) }

// NewPlan computes the files for opts without writing anything. It only reads the disk to see
// which data files exist in opts.DataDir.
func NewPlan(opts Options) (*Plan, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	p := &Plan{Options: o}
	for i := 1; i <= o.Agencies; i++ {
		if o.OneShot() {
			d := DataFile{Agency: i, Path: filepath.Join(o.GeneratedDataDir, DataFileName(i)), Generated: true}
			if o.DataDir != "" {
				provided := filepath.Join(o.DataDir, DataFileName(i))
				st, err := os.Stat(provided)
				switch {
				case err == nil && st.Mode().IsRegular():
					d = DataFile{Agency: i, Path: provided}
				case err != nil && !errors.Is(err, fs.ErrNotExist):
					return nil, fmt.Errorf("data file of agency %d: %w", i, err)
				}
			}
			p.Data = append(p.Data, d)
		}
		cfg, err := agencyConfig(o, i)
		if err != nil {
			return nil, err
		}
		p.Configs = append(p.Configs, File{Path: filepath.Join(o.GenDir, "agencies", ConfigFileName(i)), Data: cfg, Mode: 0o644})
	}
	if o.TLS {
		dir := p.CertsHostDir()
		p.Certs = []string{filepath.Join(dir, CAFile), filepath.Join(dir, CentralCert), filepath.Join(dir, CentralKey)}
		for i := 1; i <= o.Agencies; i++ {
			p.Certs = append(p.Certs, filepath.Join(dir, AgencyCert(i)), filepath.Join(dir, AgencyKey(i)))
		}
	}
	targets, err := agencyTargets(o.Agencies)
	if err != nil {
		return nil, err
	}
	p.Targets = File{Path: filepath.Join(o.GenDir, "prometheus", AgencyTargetsFile), Data: targets, Mode: 0o644}
	doc, err := composeDocument(p)
	if err != nil {
		return nil, err
	}
	p.Compose = File{Path: o.Output, Data: doc, Mode: 0o644}
	p.EnvExample = File{Path: filepath.Join(filepath.Dir(o.Output), EnvExampleFile), Data: envExample(o.TLS), Mode: 0o644}
	stamp, err := json.MarshalIndent(Stamp{Generator: stampGenerator, Settings: p.Settings(), ComposeSHA256: sha256Hex(doc)}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("stamp: %w", err)
	}
	p.Stamp = File{Path: filepath.Join(filepath.Dir(o.Output), StampFile), Data: append(stamp, '\n'), Mode: 0o644}
	return p, nil
}

// envExample lists the variables the compose file reads, with their defaults.
func envExample(tls bool) []byte {
	var b bytes.Buffer
	b.WriteString("# Host side of the loteria stack. Docker Compose reads a file named .env beside the compose\n" +
		"# file: copy this one to .env and change what collides on this machine (or export the\n" +
		"# variables in your shell). The values below are the defaults; no regeneration is needed.\n\n")
	b.WriteString("# Address the ports are published on; loopback keeps the stack off the network.\n")
	fmt.Fprintf(&b, "%s=127.0.0.1\n", BindVar)
	for _, hp := range HostPorts(tls) {
		fmt.Fprintf(&b, "\n# %s\n%s=%d\n", hp.What, hp.Var, hp.Default)
	}
	return b.Bytes()
}

// agencyConfig is the agency's config.yaml (the keys of docs/CONFIGURATION.md). The settings
// the round and pacing work added are command-line flags in the compose file.
func agencyConfig(o Options, i int) ([]byte, error) {
	type server struct {
		Address string `yaml:"address"`
	}
	type level struct {
		Level string `yaml:"level"`
	}
	type batch struct {
		MaxAmount int `yaml:"maxAmount"`
	}
	type data struct {
		Path string `yaml:"path"`
	}
	addr := CentralService + ":" + strconv.Itoa(CentralPort)
	if o.TLS {
		addr = CentralService + ":" + strconv.Itoa(CentralTLSPort)
	}
	cfg := struct {
		ID     int    `yaml:"id"`
		Server server `yaml:"server"`
		Log    level  `yaml:"log"`
		Batch  batch  `yaml:"batch"`
		Data   *data  `yaml:"data,omitempty"`
	}{
		ID:     i,
		Server: server{Address: addr},
		Log:    level{Level: o.LogLevel},
		Batch:  batch{MaxAmount: o.BatchMaxAmount},
	}
	if o.OneShot() {
		cfg.Data = &data{Path: AgencyDataDir + "/" + DataFileName(i)}
	}
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "# Agency %d of %d. Generated by deploy/cmd/generar-compose; edit freely, no rebuild needed\n# (mounted at %s), but generating again overwrites it.\n", i, o.Agencies, AgencyConfig)
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(cfg); err != nil {
		return nil, fmt.Errorf("agency %d config: %w", i, err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("agency %d config: %w", i, err)
	}
	return buf.Bytes(), nil
}

// TargetGroup is one entry of a Prometheus file_sd file.
type TargetGroup struct {
	Targets []string          `json:"targets"`
	Labels  map[string]string `json:"labels"`
}

// agencyTargets is the file_sd file listing the agencies' metrics endpoints, one group per agency
// so each target carries its agency label (and `up` says which agency is down).
func agencyTargets(n int) ([]byte, error) {
	groups := make([]TargetGroup, 0, n)
	for i := 1; i <= n; i++ {
		groups = append(groups, TargetGroup{
			Targets: []string{AgencyService(i) + ":" + strconv.Itoa(AgencyMetricsPort)},
			Labels:  map[string]string{"agency": strconv.Itoa(i)},
		})
	}
	data, err := json.MarshalIndent(groups, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("agency targets: %w", err)
	}
	return append(data, '\n'), nil
}

// Write writes every file of the plan, each atomically (Prometheus and Grafana watch them),
// removes agency configs left in GenDir by an earlier run with more agencies, and has
// CertsCommand write the certificates the stack mounts that are missing.
//
// It refuses to replace a compose file it did not write, or one edited since (its stamp is
// missing or its digest differs), unless force is set: see Inspect.
func (p *Plan) Write(force bool) error {
	st, err := Inspect(p.Options.Output)
	if err != nil {
		return err
	}
	if !force {
		switch {
		case st.Exists && st.Stamp == nil:
			return fmt.Errorf("%s was not written by this generator (no %s beside it): not replacing it; move it away, or force (FORCE=1, --force)", p.Options.Output, StampFile)
		case st.Exists && st.Edited:
			return fmt.Errorf("%s was edited since it was generated (its digest no longer matches %s): not replacing it; keep your changes elsewhere, or force (FORCE=1, --force)", p.Options.Output, StampFile)
		}
	}
	if p.Options.TLS {
		if err := p.writeCerts(); err != nil {
			return err
		}
	}
	// The stamp goes last: a stack written halfway has no stamp matching its compose file.
	for _, f := range p.Files() {
		if err := writeFile(f.Path, f.Data, f.Mode); err != nil {
			return err
		}
	}
	dir := filepath.Join(p.Options.GenDir, "agencies")
	old, err := filepath.Glob(filepath.Join(dir, "agency-*.yaml"))
	if err != nil {
		return fmt.Errorf("list old agency configs: %w", err)
	}
	keep := map[string]bool{}
	for _, f := range p.Configs {
		keep[f.Path] = true
	}
	for _, f := range old {
		if !keep[f] {
			if err := os.Remove(f); err != nil {
				return fmt.Errorf("remove stale agency config: %w", err)
			}
		}
	}
	return nil
}

func writeFile(path string, data []byte, mode os.FileMode) error {
	if mode == 0 {
		mode = 0o644
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(mode)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
