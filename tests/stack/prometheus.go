package stack

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/loteria/loteria/internal/testenv"
)

// PrometheusOptions configure StartPrometheusWith.
type PrometheusOptions struct {
	// Targets maps a job name to the host:port of its targets, scraped at
	// /metrics.
	Targets map[string][]string
	// TargetLabels adds labels to targets, by address, as the compose
	// stack's file_sd does (an agency's target carries agency="<id>").
	TargetLabels map[string]map[string]string
	// HonorLabels lists the jobs scraped with honor_labels, as
	// deploy/prometheus/prometheus.yml does for the agencies.
	HonorLabels []string
	// RuleFiles are recording/alerting rule files to load (rule_files);
	// relative paths are taken from the repository root.
	RuleFiles []string
	// ScrapeInterval is the scrape and rule evaluation interval (default
	// 1s); the scrape timeout is the same.
	ScrapeInterval time.Duration
	// Binary is the prometheus program; default $LOTERIA_PROMETHEUS, else
	// "prometheus" on PATH.
	Binary string
	// ReadyTimeout bounds the wait for /-/ready (default 30s).
	ReadyTimeout time.Duration
	// Alertmanagers are the host:port of the Alertmanagers alerts go to (alerting section).
	Alertmanagers []string
}

// Prometheus is a running Prometheus server on loopback.
type Prometheus struct {
	// URL is the base URL, http://127.0.0.1:PORT.
	URL string
	// ConfigFile is the prometheus.yml it runs with.
	ConfigFile string
	Process    *Process
}

// StartPrometheus starts Prometheus scraping targets (job → host:port)
// every second, with exemplar storage on, and waits until it is ready.
func StartPrometheus(tb testing.TB, targets map[string][]string) *Prometheus {
	tb.Helper()
	return StartPrometheusWith(tb, PrometheusOptions{Targets: targets})
}

// StartPrometheusWith is StartPrometheus with every option.
func StartPrometheusWith(tb testing.TB, opts PrometheusOptions) *Prometheus {
	tb.Helper()
	bin := opts.Binary
	if bin == "" {
		bin = testenv.Tool(tb, "LOTERIA_PROMETHEUS", "prometheus")
	}
	if bin == "" {
		testenv.Unavailable(tb, "prometheus not found (make prometheus builds bin/prometheus, or set LOTERIA_PROMETHEUS)")
	}
	if opts.ScrapeInterval <= 0 {
		opts.ScrapeInterval = time.Second
	}
	if opts.ReadyTimeout <= 0 {
		opts.ReadyTimeout = 30 * time.Second
	}

	dir := tb.TempDir()
	cfg, err := prometheusConfig(opts, testenv.RepoRoot(tb))
	if err != nil {
		tb.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, cfg, 0o644); err != nil {
		tb.Fatal(err)
	}
	addr := testenv.FreeAddr(tb)
	proc := StartProcess(tb, ProcessSpec{
		Name: "prometheus",
		Path: bin,
		Args: []string{
			"--config.file=" + cfgPath,
			"--storage.tsdb.path=" + filepath.Join(dir, "data"),
			"--web.listen-address=" + addr,
			"--enable-feature=exemplar-storage",
			"--log.level=warn",
		},
		Dir: dir,
	})
	p := &Prometheus{URL: "http://" + addr, ConfigFile: cfgPath, Process: proc}
	Poll(tb, opts.ReadyTimeout, "prometheus to be ready", func() error {
		if !proc.Running() {
			return fmt.Errorf("prometheus exited: %v\n%s", proc.ExitErr(), tail(proc.Stderr(), 4096))
		}
		return httpOK(context.Background(), p.URL+"/-/ready")
	})
	return p
}

// prometheusConfig renders prometheus.yml. It is written as JSON, which is
// YAML, so no value ever needs YAML quoting.
func prometheusConfig(opts PrometheusOptions, root string) ([]byte, error) {
	type staticConfig struct {
		Targets []string          `json:"targets"`
		Labels  map[string]string `json:"labels,omitempty"`
	}
	type scrapeConfig struct {
		JobName       string         `json:"job_name"`
		HonorLabels   bool           `json:"honor_labels,omitempty"`
		StaticConfigs []staticConfig `json:"static_configs"`
	}
	interval := promDuration(opts.ScrapeInterval)
	type alertmanagers struct {
		StaticConfigs []staticConfig `json:"static_configs"`
	}
	type alerting struct {
		Alertmanagers []alertmanagers `json:"alertmanagers"`
	}
	cfg := struct {
		Global struct {
			ScrapeInterval     string `json:"scrape_interval"`
			ScrapeTimeout      string `json:"scrape_timeout"`
			EvaluationInterval string `json:"evaluation_interval"`
		} `json:"global"`
		RuleFiles     []string       `json:"rule_files,omitempty"`
		Alerting      *alerting      `json:"alerting,omitempty"`
		ScrapeConfigs []scrapeConfig `json:"scrape_configs"`
	}{}
	if len(opts.Alertmanagers) > 0 {
		cfg.Alerting = &alerting{Alertmanagers: []alertmanagers{{StaticConfigs: []staticConfig{{Targets: opts.Alertmanagers}}}}}
	}
	cfg.Global.ScrapeInterval, cfg.Global.ScrapeTimeout, cfg.Global.EvaluationInterval = interval, interval, interval
	for _, f := range opts.RuleFiles {
		if !filepath.IsAbs(f) {
			f = filepath.Join(root, f)
		}
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("rule file: %w", err)
		}
		cfg.RuleFiles = append(cfg.RuleFiles, f)
	}
	jobs := make([]string, 0, len(opts.Targets))
	for j := range opts.Targets {
		jobs = append(jobs, j)
	}
	slices.Sort(jobs)
	for _, j := range jobs {
		sc := scrapeConfig{JobName: j, HonorLabels: slices.Contains(opts.HonorLabels, j)}
		for _, t := range opts.Targets[j] {
			sc.StaticConfigs = append(sc.StaticConfigs, staticConfig{Targets: []string{t}, Labels: opts.TargetLabels[t]})
		}
		cfg.ScrapeConfigs = append(cfg.ScrapeConfigs, sc)
	}
	return json.MarshalIndent(cfg, "", "  ")
}

// promDuration renders d as a Prometheus duration ("1s", "500ms").
func promDuration(d time.Duration) string {
	if d%time.Second == 0 {
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
}

// Sample is one value of a query result.
type Sample struct {
	Metric    map[string]string
	Timestamp time.Time
	Value     float64
}

func (s Sample) String() string {
	return fmt.Sprintf("%s => %g", labelsString(s.Metric), s.Value)
}

// QueryResult is an instant query's answer. Vector and scalar results
// become Samples (a scalar as one sample without labels); a matrix result
// (a range selector) becomes one sample per point.
type QueryResult struct {
	Type     string // "vector", "scalar", "matrix" or "string"
	Samples  []Sample
	Warnings []string
}

func (r QueryResult) String() string {
	if len(r.Samples) == 0 {
		return r.Type + " (empty)"
	}
	parts := make([]string, len(r.Samples))
	for i, s := range r.Samples {
		parts[i] = s.String()
	}
	return r.Type + " " + strings.Join(parts, ", ")
}

// Query runs an instant query at the current time (/api/v1/query).
func (p *Prometheus) Query(ctx context.Context, promql string) (QueryResult, error) {
	var data struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	warnings, err := p.API(ctx, "/api/v1/query", url.Values{"query": {promql}}, &data)
	if err != nil {
		return QueryResult{}, err
	}
	res := QueryResult{Type: data.ResultType, Warnings: warnings}
	switch data.ResultType {
	case "vector":
		var v []struct {
			Metric map[string]string `json:"metric"`
			Value  promPoint         `json:"value"`
		}
		if err := json.Unmarshal(data.Result, &v); err != nil {
			return res, fmt.Errorf("query %q: decoding vector: %w", promql, err)
		}
		for _, s := range v {
			res.Samples = append(res.Samples, Sample{Metric: s.Metric, Timestamp: s.Value.T, Value: s.Value.V})
		}
	case "scalar":
		var pt promPoint
		if err := json.Unmarshal(data.Result, &pt); err != nil {
			return res, fmt.Errorf("query %q: decoding scalar: %w", promql, err)
		}
		res.Samples = []Sample{{Metric: map[string]string{}, Timestamp: pt.T, Value: pt.V}}
	case "matrix":
		var m []struct {
			Metric map[string]string `json:"metric"`
			Values []promPoint       `json:"values"`
		}
		if err := json.Unmarshal(data.Result, &m); err != nil {
			return res, fmt.Errorf("query %q: decoding matrix: %w", promql, err)
		}
		for _, s := range m {
			for _, pt := range s.Values {
				res.Samples = append(res.Samples, Sample{Metric: s.Metric, Timestamp: pt.T, Value: pt.V})
			}
		}
	}
	return res, nil
}

// Exemplar is one exemplar of a series.
type Exemplar struct {
	Labels    map[string]string
	Value     float64
	Timestamp time.Time
}

// ExemplarSeries is the exemplars of one series.
type ExemplarSeries struct {
	SeriesLabels map[string]string
	Exemplars    []Exemplar
}

// QueryExemplars returns the exemplars of the series promql selects between
// start and end (/api/v1/query_exemplars).
func (p *Prometheus) QueryExemplars(ctx context.Context, promql string, start, end time.Time) ([]ExemplarSeries, error) {
	var data []struct {
		SeriesLabels map[string]string `json:"seriesLabels"`
		Exemplars    []struct {
			Labels    map[string]string `json:"labels"`
			Value     string            `json:"value"`
			Timestamp float64           `json:"timestamp"`
		} `json:"exemplars"`
	}
	_, err := p.API(ctx, "/api/v1/query_exemplars", url.Values{
		"query": {promql}, "start": {unixSeconds(start)}, "end": {unixSeconds(end)},
	}, &data)
	if err != nil {
		return nil, err
	}
	out := make([]ExemplarSeries, 0, len(data))
	for _, s := range data {
		es := ExemplarSeries{SeriesLabels: s.SeriesLabels}
		for _, e := range s.Exemplars {
			v, err := strconv.ParseFloat(e.Value, 64)
			if err != nil {
				return nil, fmt.Errorf("exemplar value %q: %w", e.Value, err)
			}
			es.Exemplars = append(es.Exemplars, Exemplar{Labels: e.Labels, Value: v, Timestamp: floatTime(e.Timestamp)})
		}
		out = append(out, es)
	}
	return out, nil
}

// Target is one scrape target's state (/api/v1/targets).
type Target struct {
	Job        string
	ScrapeURL  string
	Health     string // "up", "down" or "unknown"
	LastError  string
	LastScrape time.Time
}

// Targets returns the active targets' state.
func (p *Prometheus) Targets(ctx context.Context) ([]Target, error) {
	var data struct {
		ActiveTargets []struct {
			ScrapePool string    `json:"scrapePool"`
			ScrapeURL  string    `json:"scrapeUrl"`
			Health     string    `json:"health"`
			LastError  string    `json:"lastError"`
			LastScrape time.Time `json:"lastScrape"`
		} `json:"activeTargets"`
	}
	if _, err := p.API(ctx, "/api/v1/targets", url.Values{"state": {"active"}}, &data); err != nil {
		return nil, err
	}
	out := make([]Target, len(data.ActiveTargets))
	for i, t := range data.ActiveTargets {
		out[i] = Target{Job: t.ScrapePool, ScrapeURL: t.ScrapeURL, Health: t.Health, LastError: t.LastError, LastScrape: t.LastScrape}
	}
	return out, nil
}

// API GETs an endpoint of the HTTP API (path such as "/api/v1/rules"),
// checks its status and decodes its data into out; it returns the
// warnings.
func (p *Prometheus) API(ctx context.Context, path string, params url.Values, out any) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	u := p.URL + path
	if len(params) > 0 {
		u += "?" + params.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	var env struct {
		Status    string          `json:"status"`
		Data      json.RawMessage `json:"data"`
		ErrorType string          `json:"errorType"`
		Error     string          `json:"error"`
		Warnings  []string        `json:"warnings"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, fmt.Errorf("GET %s: %s: not an API answer: %w: %.200s", path, resp.Status, err, body)
	}
	if env.Status != "success" {
		return env.Warnings, fmt.Errorf("GET %s %s: %s: %s", path, params.Get("query"), env.ErrorType, env.Error)
	}
	if out != nil {
		if err := json.Unmarshal(env.Data, out); err != nil {
			return env.Warnings, fmt.Errorf("GET %s: decoding data: %w", path, err)
		}
	}
	return env.Warnings, nil
}

// WaitFor polls promql until it yields exactly one sample (a scalar, or a
// vector of one series) whose value satisfies cond, and returns that
// value. When timeout passes first it fails the test with the last answer
// and the state of the scrape targets.
func (p *Prometheus) WaitFor(tb testing.TB, promql string, cond func(value float64) bool, timeout time.Duration) float64 {
	tb.Helper()
	var got float64
	err := PollErr(timeout, func() error {
		res, err := p.Query(context.Background(), promql)
		if err != nil {
			return err
		}
		if len(res.Samples) != 1 {
			return fmt.Errorf("want exactly one sample, got %s", res)
		}
		got = res.Samples[0].Value
		if !cond(got) {
			return fmt.Errorf("condition not met by %s", res)
		}
		return nil
	})
	if err != nil {
		tb.Fatalf("prometheus: %s: still not as expected after %s: %v\ntargets:\n%s", promql, timeout, err, p.targetsReport())
	}
	return got
}

func (p *Prometheus) targetsReport() string {
	ts, err := p.Targets(context.Background())
	if err != nil {
		return "  (" + err.Error() + ")"
	}
	var b strings.Builder
	for _, t := range ts {
		fmt.Fprintf(&b, "  %s %s: %s, last scrape %s", t.Job, t.ScrapeURL, t.Health, t.LastScrape.Format(time.RFC3339Nano))
		if t.LastError != "" {
			fmt.Fprintf(&b, ", error %q", t.LastError)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// Equals is a WaitFor condition: the value is want.
func Equals(want float64) func(float64) bool {
	return func(v float64) bool { return v == want }
}

// AtLeast is a WaitFor condition: the value is least or more.
func AtLeast(least float64) func(float64) bool {
	return func(v float64) bool { return v >= least }
}

// promPoint is the API's [<unix seconds>, "<value>"].
type promPoint struct {
	T time.Time
	V float64
}

func (p *promPoint) UnmarshalJSON(b []byte) error {
	var raw [2]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	var ts float64
	if err := json.Unmarshal(raw[0], &ts); err != nil {
		return err
	}
	var s string
	if err := json.Unmarshal(raw[1], &s); err != nil {
		return err
	}
	v, err := strconv.ParseFloat(s, 64) // also "NaN", "+Inf", "-Inf"
	if err != nil {
		return err
	}
	p.T, p.V = floatTime(ts), v
	return nil
}

func floatTime(sec float64) time.Time {
	whole, frac := math.Modf(sec)
	return time.Unix(int64(whole), int64(frac*1e9))
}

func unixSeconds(t time.Time) string {
	return strconv.FormatFloat(float64(t.UnixNano())/1e9, 'f', 3, 64)
}

func labelsString(m map[string]string) string {
	name := m["__name__"]
	keys := make([]string, 0, len(m))
	for k := range m {
		if k != "__name__" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + strconv.Quote(m[k])
	}
	return name + "{" + strings.Join(parts, ",") + "}"
}
