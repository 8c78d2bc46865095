package stack

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/loteria/loteria/internal/testenv"
)

// Jaeger is a running Jaeger v2 (an OpenTelemetry Collector distribution)
// with in-memory storage, receiving OTLP and answering its query API, all
// on loopback.
type Jaeger struct {
	// OTLPGRPCEndpoint and OTLPHTTPEndpoint are the OTLP receivers'
	// host:port (use http://<OTLPGRPCEndpoint> with
	// OTEL_EXPORTER_OTLP_PROTOCOL=grpc for an insecure connection).
	OTLPGRPCEndpoint string
	OTLPHTTPEndpoint string
	// QueryURL is the query service's base URL (UI and /api/...).
	QueryURL   string
	ConfigFile string
	Process    *Process
}

// jaegerConfig is the collector configuration StartJaeger runs: OTLP in,
// the batch processor, the jaeger_storage exporter into a memory backend,
// and jaeger_query over it. The collector's own telemetry is off, so it
// opens no port (such as :8888) beyond these.
const jaegerConfig = `service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: warn

extensions:
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 100000
  jaeger_query:
    storage:
      traces: memstore
    http:
      endpoint: %q
    grpc:
      endpoint: %q

receivers:
  otlp:
    protocols:
      grpc:
        endpoint: %q
      http:
        endpoint: %q

processors:
  batch:
    timeout: 100ms

exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
`

// StartJaeger starts $LOTERIA_JAEGER (built by `make jaeger`) and waits
// until its query API answers and its OTLP receivers accept connections.
// Without LOTERIA_JAEGER the test is skipped, or failed under CI.
func StartJaeger(tb testing.TB) *Jaeger {
	tb.Helper()
	bin := testenv.Tool(tb, "LOTERIA_JAEGER", "jaeger")
	if bin == "" {
		testenv.Unavailable(tb, "jaeger not found (make jaeger builds bin/jaeger; make test sets LOTERIA_JAEGER)")
	}
	dir := tb.TempDir()
	addrs := testenv.FreeAddrs(tb, 4)
	j := &Jaeger{OTLPGRPCEndpoint: addrs[0], OTLPHTTPEndpoint: addrs[1]}
	queryAddr, queryGRPC := addrs[2], addrs[3]
	j.QueryURL = "http://" + queryAddr
	j.ConfigFile = filepath.Join(dir, "jaeger.yaml")
	cfg := fmt.Sprintf(jaegerConfig, queryAddr, queryGRPC, j.OTLPGRPCEndpoint, j.OTLPHTTPEndpoint)
	if err := os.WriteFile(j.ConfigFile, []byte(cfg), 0o644); err != nil {
		tb.Fatal(err)
	}
	j.Process = StartProcess(tb, ProcessSpec{
		Name: "jaeger",
		Path: bin,
		Args: []string{"--config", "file:" + j.ConfigFile},
		Dir:  dir,
	})
	Poll(tb, 60*time.Second, "jaeger to be ready", func() error {
		if !j.Process.Running() {
			return fmt.Errorf("jaeger exited: %v\n%s", j.Process.ExitErr(), tail(j.Process.Stderr(), 4096))
		}
		if err := httpOK(context.Background(), j.QueryURL+"/api/services"); err != nil {
			return err
		}
		// Receivers start after the extensions: the query API answering
		// does not mean spans are accepted yet.
		if err := dialOK(j.OTLPGRPCEndpoint); err != nil {
			return err
		}
		return dialOK(j.OTLPHTTPEndpoint)
	})
	return j
}

// Trace is a trace as the query API returns it.
type Trace struct {
	TraceID   string                  `json:"traceID"`
	Spans     []Span                  `json:"spans"`
	Processes map[string]TraceProcess `json:"processes"`
}

// TraceProcess is the resource a span comes from.
type TraceProcess struct {
	ServiceName string `json:"serviceName"`
	Tags        []Tag  `json:"tags"`
}

// Span is one span of a Trace.
type Span struct {
	TraceID       string      `json:"traceID"`
	SpanID        string      `json:"spanID"`
	OperationName string      `json:"operationName"`
	References    []Reference `json:"references"`
	StartTime     int64       `json:"startTime"` // µs since the epoch
	Duration      int64       `json:"duration"`  // µs
	Tags          []Tag       `json:"tags"`
	ProcessID     string      `json:"processID"`
	// Service is the service.name of the span's process (filled in by
	// Traces).
	Service string `json:"-"`
}

// Reference links a span to another (refType CHILD_OF or FOLLOWS_FROM).
type Reference struct {
	RefType string `json:"refType"`
	TraceID string `json:"traceID"`
	SpanID  string `json:"spanID"`
}

// Tag is a span or process attribute.
type Tag struct {
	Key   string          `json:"key"`
	Type  string          `json:"type"`
	Value json.RawMessage `json:"value"`
}

// String is the tag's value: a string's contents, or the JSON text of a
// number or boolean.
func (t Tag) String() string {
	var s string
	if json.Unmarshal(t.Value, &s) == nil {
		return s
	}
	return string(t.Value)
}

// Tag returns the value of the span's attribute key.
func (s Span) Tag(key string) (string, bool) {
	return findTag(s.Tags, key)
}

// Tag returns the value of the process's resource attribute key.
func (p TraceProcess) Tag(key string) (string, bool) {
	return findTag(p.Tags, key)
}

func findTag(tags []Tag, key string) (string, bool) {
	for _, t := range tags {
		if t.Key == key {
			return t.String(), true
		}
	}
	return "", false
}

// ParentID is the span id of the span's parent in its trace (its CHILD_OF
// reference), or "" for a root span.
func (s Span) ParentID() string {
	for _, r := range s.References {
		if r.RefType == "CHILD_OF" && r.TraceID == s.TraceID {
			return r.SpanID
		}
	}
	return ""
}

// Span returns the span with id, if the trace holds it.
func (t Trace) Span(id string) (Span, bool) {
	for _, s := range t.Spans {
		if s.SpanID == id {
			return s, true
		}
	}
	return Span{}, false
}

// Children returns the spans whose parent is the span id.
func (t Trace) Children(id string) []Span {
	var out []Span
	for _, s := range t.Spans {
		if s.ParentID() == id {
			out = append(out, s)
		}
	}
	return out
}

// Find returns the spans of service (any, when "") named operation.
func (t Trace) Find(service, operation string) []Span {
	var out []Span
	for _, s := range t.Spans {
		if s.OperationName == operation && (service == "" || s.Service == service) {
			out = append(out, s)
		}
	}
	return out
}

// TraceQuery selects traces in FindTraces.
type TraceQuery struct {
	Service   string // required
	Operation string // optional
	// Limit is the most traces returned (default 100, the API's default).
	Limit int
	// Start and End bound the spans' start time (default: the last hour).
	Start, End time.Time
}

// Traces returns up to 100 of the last hour's traces that have a span of
// service (/api/traces?service=...), every span of them included.
func (j *Jaeger) Traces(ctx context.Context, service string) ([]Trace, error) {
	return j.FindTraces(ctx, TraceQuery{Service: service})
}

// FindTraces searches traces (/api/traces), every span of them included.
func (j *Jaeger) FindTraces(ctx context.Context, q TraceQuery) ([]Trace, error) {
	if q.Limit <= 0 {
		q.Limit = 100
	}
	if q.End.IsZero() {
		q.End = time.Now().Add(time.Minute)
	}
	if q.Start.IsZero() {
		q.Start = q.End.Add(-time.Hour)
	}
	params := url.Values{
		"service": {q.Service},
		"limit":   {strconv.Itoa(q.Limit)},
		"start":   {strconv.FormatInt(q.Start.UnixMicro(), 10)},
		"end":     {strconv.FormatInt(q.End.UnixMicro(), 10)},
	}
	if q.Operation != "" {
		params.Set("operation", q.Operation)
	}
	var traces []Trace
	if err := j.api(ctx, "/api/traces", params, &traces); err != nil {
		return nil, err
	}
	for i := range traces {
		t := &traces[i]
		for k := range t.Spans {
			t.Spans[k].Service = t.Processes[t.Spans[k].ProcessID].ServiceName
		}
	}
	return traces, nil
}

// Services lists the services that have sent spans (/api/services).
func (j *Jaeger) Services(ctx context.Context) ([]string, error) {
	var s []string
	err := j.api(ctx, "/api/services", nil, &s)
	return s, err
}

// Operations lists the span names seen for service (/api/operations).
func (j *Jaeger) Operations(ctx context.Context, service string) ([]string, error) {
	var ops []struct {
		Name string `json:"name"`
	}
	if err := j.api(ctx, "/api/operations", url.Values{"service": {service}}, &ops); err != nil {
		return nil, err
	}
	out := make([]string, len(ops))
	for i, o := range ops {
		out[i] = o.Name
	}
	return out, nil
}

// api GETs an endpoint of the query service's JSON API and decodes its
// data into out.
func (j *Jaeger) api(ctx context.Context, path string, params url.Values, out any) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	u := j.QueryURL + path
	if len(params) > 0 {
		u += "?" + params.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return err
	}
	var env struct {
		Data   json.RawMessage `json:"data"`
		Errors []struct {
			Code int    `json:"code"`
			Msg  string `json:"msg"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return fmt.Errorf("GET %s: %s: not an API answer: %w: %.200s", path, resp.Status, err, body)
	}
	if len(env.Errors) > 0 {
		return fmt.Errorf("GET %s: %s: %d %s", path, resp.Status, env.Errors[0].Code, env.Errors[0].Msg)
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	if len(env.Data) == 0 || string(env.Data) == "null" {
		return nil
	}
	return json.Unmarshal(env.Data, out)
}

// Trace returns one trace by id (/api/traces/<id>), every span of it included.
func (j *Jaeger) Trace(ctx context.Context, id string) (Trace, error) {
	var traces []Trace
	if err := j.api(ctx, "/api/traces/"+url.PathEscape(id), nil, &traces); err != nil {
		return Trace{}, err
	}
	if len(traces) != 1 {
		return Trace{}, fmt.Errorf("trace %s: %d traces in the answer", id, len(traces))
	}
	t := traces[0]
	for k := range t.Spans {
		t.Spans[k].Service = t.Processes[t.Spans[k].ProcessID].ServiceName
	}
	return t, nil
}
