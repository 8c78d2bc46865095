// Package compose generates the Docker Compose stack of loteria for N agencies: the central, the
// agencies agency1..agencyN, Prometheus, Grafana and Jaeger on one network, plus the files the
// stack mounts that depend on N (one config file per agency and the Prometheus scrape targets of
// the agencies).
//
// The output is deterministic: the same options and the same data files on disk give the same
// bytes. Nothing is built into the images but the binaries: configs, data, dashboards and the
// Prometheus and Grafana configuration are mounted, so changing them needs no rebuild.
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

// Pinned images of the stack's third-party services.
const (
	PrometheusImage = "prom/prometheus:v3.5.0"
	GrafanaImage    = "grafana/grafana:12.0.1"
	JaegerImage     = "jaegertracing/jaeger:2.5.0"
)

// Images built from deploy/Dockerfile.
const (
	CentralImage = "loteria/central:local"
	AgencyImage  = "loteria/agency:local"
)

// Service names, ports and paths inside the containers.
const (
	ProjectName = "loteria"
	NetworkName = "loteria"

	CentralService    = "central"
	PrometheusService = "prometheus"
	GrafanaService    = "grafana"
	JaegerService     = "jaeger"

	CentralPort        = 12345 // agencies connect here
	CentralMetricsPort = 9464
	AgencyMetricsPort  = 9465
	PrometheusPort     = 9090
	GrafanaPort        = 3000
	JaegerUIPort       = 16686
	JaegerOTLPGRPCPort = 4317
	JaegerOTLPHTTPPort = 4318
	JaegerMetricsPort  = 8888

	CentralBinary   = "/usr/local/bin/central"
	AgencyBinary    = "/usr/local/bin/agency"
	CentralDataDir  = "/data"
	CentralStore    = "/data/bets.csv"
	AgencyConfig    = "/app/config.yaml"
	AgencyDataDir   = "/app/.data"
	PrometheusConf  = "/etc/prometheus/prometheus.yml"
	PrometheusRules = "/etc/prometheus/rules"
	PrometheusSD    = "/etc/prometheus/targets"
	PrometheusData  = "/prometheus"
	GrafanaProv     = "/etc/grafana/provisioning"
	GrafanaDash     = "/etc/grafana/dashboards"

	// AgencyTargetsFile is the file_sd file prometheus.yml reads, relative to PrometheusSD.
	AgencyTargetsFile = "agencies.json"

	// CentralShutdownTimeout is the central's bound on graceful shutdown (SHUTDOWN_TIMEOUT);
	// the stop grace periods leave room above it before Docker sends SIGKILL.
	CentralShutdownTimeout = 10 * time.Second
	CentralStopGrace       = 20 * time.Second
	AgencyStopGrace        = 15 * time.Second
)

// Repository paths the stack mounts, relative to the repository root.
const (
	DockerfilePath       = "deploy/Dockerfile"
	PrometheusConfigPath = "deploy/prometheus/prometheus.yml"
	PrometheusRulesPath  = "deploy/prometheus/rules"
	GrafanaProvPath      = "deploy/grafana/provisioning"
	DashboardsPath       = "dashboards"
	HomeDashboard        = "loteria-central.json"
)

// Options say what to generate.
type Options struct {
	// Agencies is N, the number of agencies (N >= 1).
	Agencies int
	// Root is the repository root (default ".").
	Root string
	// Output is the compose file to write (default <Root>/deploy/out/docker-compose.yaml).
	Output string
	// GenDir receives the generated agency configs and Prometheus targets (default: the output's
	// directory, or <Root>/.data/compose when the output is in the root).
	GenDir string
	// DataDir holds data files agency-<i>.csv to use when present, e.g. the course's dataset
	// (../shared/datasets/tp0). Empty: use generated data for every agency.
	DataDir string
	// GeneratedDataDir is where generated data files agency-<i>.csv are (written by
	// `go run ./services/cmd/gendata --agencies N --out DIR`; default <Root>/.data).
	GeneratedDataDir string
	// LogFormat is LOG_FORMAT for the central and the agencies (default json).
	LogFormat string
	// LogLevel is LOGGING_LEVEL / CLI_LOG_LEVEL (default INFO).
	LogLevel string
	// BatchMaxAmount is batch.maxAmount in the agencies' config (default 100).
	BatchMaxAmount int
	// Linger is CLI_LINGER: how long an agency keeps /metrics up after its winners, so
	// Prometheus scrapes the final counters (default 60s).
	Linger time.Duration
}

func (o Options) withDefaults() (Options, error) {
	if o.Agencies < 1 {
		return o, fmt.Errorf("agencies must be at least 1, got %d", o.Agencies)
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
	if o.BatchMaxAmount == 0 {
		o.BatchMaxAmount = 100
	}
	if o.BatchMaxAmount < 1 {
		return o, fmt.Errorf("batch max amount must be at least 1, got %d", o.BatchMaxAmount)
	}
	if o.Linger == 0 {
		o.Linger = 60 * time.Second
	}
	if o.Linger < 0 {
		return o, fmt.Errorf("linger must not be negative, got %s", o.Linger)
	}
	return o, nil
}

// File is one file of a Plan.
type File struct {
	Path string // absolute
	Data []byte
}

// DataFile says which bets file an agency reads.
type DataFile struct {
	Agency int
	Path   string // absolute host path
	// Generated is true when the file is (to be) written by the gendata tool, false when it was
	// found in Options.DataDir.
	Generated bool
}

// Plan is everything Generate writes.
type Plan struct {
	Options Options // with defaults applied, paths absolute
	Compose File
	// Configs are the agencies' config files, agency 1 first.
	Configs []File
	Targets File
	Data    []DataFile
}

// Files lists every file of the plan, the compose file first.
func (p *Plan) Files() []File {
	out := []File{p.Compose}
	out = append(out, p.Configs...)
	return append(out, p.Targets)
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

// AgencyService is the compose service (and container) name of agency i.
func AgencyService(i int) string { return "agency" + strconv.Itoa(i) }

// DataFileName is the bets file name of agency i, in a data directory.
func DataFileName(i int) string { return "agency-" + strconv.Itoa(i) + ".csv" }

// ConfigFileName is the config file name of agency i, in GenDir/agencies.
func ConfigFileName(i int) string { return "agency-" + strconv.Itoa(i) + ".yaml" }

// NewPlan computes the files for opts without writing anything. It only reads the disk to see
// which data files exist in opts.DataDir.
func NewPlan(opts Options) (*Plan, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	p := &Plan{Options: o}
	for i := 1; i <= o.Agencies; i++ {
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
		cfg, err := agencyConfig(o, i)
		if err != nil {
			return nil, err
		}
		p.Configs = append(p.Configs, File{Path: filepath.Join(o.GenDir, "agencies", ConfigFileName(i)), Data: cfg})
	}
	targets, err := agencyTargets(o.Agencies)
	if err != nil {
		return nil, err
	}
	p.Targets = File{Path: filepath.Join(o.GenDir, "prometheus", AgencyTargetsFile), Data: targets}
	doc, err := composeDocument(p)
	if err != nil {
		return nil, err
	}
	p.Compose = File{Path: o.Output, Data: doc}
	return p, nil
}

// agencyConfig is the agency's config.yaml (the keys of docs/CONFIGURATION.md).
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
	cfg := struct {
		ID     int    `yaml:"id"`
		Server server `yaml:"server"`
		Log    level  `yaml:"log"`
		Batch  batch  `yaml:"batch"`
		Data   data   `yaml:"data"`
	}{
		ID:     i,
		Server: server{Address: CentralService + ":" + strconv.Itoa(CentralPort)},
		Log:    level{Level: o.LogLevel},
		Batch:  batch{MaxAmount: o.BatchMaxAmount},
		Data:   data{Path: AgencyDataDir + "/" + DataFileName(i)},
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

// Write writes every file of the plan, each atomically (Prometheus and Grafana watch them), and
// removes agency configs left in GenDir by an earlier run with more agencies.
func (p *Plan) Write() error {
	for _, f := range p.Files() {
		if err := writeFile(f.Path, f.Data); err != nil {
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

func writeFile(path string, data []byte) error {
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
		err = tmp.Chmod(0o644)
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
