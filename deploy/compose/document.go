package compose

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// The compose model this package writes: the subset of the Compose specification it uses, in
// the order fields are written.

type service struct {
	Image           string                `yaml:"image"`
	Build           *build                `yaml:"build,omitempty"`
	PullPolicy      string                `yaml:"pull_policy,omitempty"`
	ContainerName   string                `yaml:"container_name,omitempty"`
	Command         []string              `yaml:"command,omitempty"`
	User            string                `yaml:"user,omitempty"`
	Environment     map[string]string     `yaml:"environment,omitempty"`
	Expose          []string              `yaml:"expose,omitempty"`
	Ports           []string              `yaml:"ports,omitempty"`
	Volumes         []mount               `yaml:"volumes,omitempty"`
	DependsOn       map[string]dependency `yaml:"depends_on,omitempty"`
	Healthcheck     *healthcheck          `yaml:"healthcheck,omitempty"`
	StopSignal      string                `yaml:"stop_signal,omitempty"`
	StopGracePeriod string                `yaml:"stop_grace_period,omitempty"`
	Restart         string                `yaml:"restart,omitempty"`
	ReadOnly        bool                  `yaml:"read_only,omitempty"`
	SecurityOpt     []string              `yaml:"security_opt,omitempty"`
	CapDrop         []string              `yaml:"cap_drop,omitempty"`
	Networks        []string              `yaml:"networks,omitempty"`
	Deploy          *deploy               `yaml:"deploy,omitempty"`
	Logging         *logging              `yaml:"logging,omitempty"`
}

type build struct {
	Context    string            `yaml:"context"`
	Dockerfile string            `yaml:"dockerfile"`
	Target     string            `yaml:"target"`
	Args       map[string]string `yaml:"args,omitempty"`
}

type mount struct {
	Type     string `yaml:"type"`
	Source   string `yaml:"source"`
	Target   string `yaml:"target"`
	ReadOnly bool   `yaml:"read_only,omitempty"`
}

type dependency struct {
	Condition string `yaml:"condition"`
	Required  bool   `yaml:"required"`
}

type healthcheck struct {
	Test          []string `yaml:"test"`
	Interval      string   `yaml:"interval"`
	Timeout       string   `yaml:"timeout"`
	Retries       int      `yaml:"retries"`
	StartPeriod   string   `yaml:"start_period"`
	StartInterval string   `yaml:"start_interval,omitempty"`
}

type deploy struct {
	Resources resources `yaml:"resources"`
}

type resources struct {
	Limits limits `yaml:"limits"`
}

type limits struct {
	CPUs   string `yaml:"cpus"`
	Memory string `yaml:"memory"`
}

type logging struct {
	Driver  string            `yaml:"driver"`
	Options map[string]string `yaml:"options"`
}

type network struct {
	Name   string `yaml:"name"`
	Driver string `yaml:"driver"`
}

type volume struct {
	Name string `yaml:"name"`
}

// paths turns absolute host paths into paths relative to the compose file's directory, as
// Compose resolves them.
type paths struct{ base string }

func (p paths) rel(abs string) (string, error) {
	r, err := filepath.Rel(p.base, abs)
	if err != nil {
		return "", fmt.Errorf("path %s relative to %s: %w", abs, p.base, err)
	}
	r = filepath.ToSlash(r)
	if r == "." {
		return ".", nil
	}
	if !strings.HasPrefix(r, "../") {
		r = "./" + r
	}
	return r, nil
}

func seconds(d time.Duration) string { return strconv.Itoa(int(d/time.Second)) + "s" }

func port(n int) string { return strconv.Itoa(n) }

// localPort publishes a container port on the host's loopback only.
func localPort(n int) string { return "127.0.0.1:" + port(n) + ":" + port(n) }

func defaultLogging() *logging {
	return &logging{Driver: "json-file", Options: map[string]string{"max-size": "10m", "max-file": "3"}}
}

func limit(cpus, memory string) *deploy {
	return &deploy{Resources: resources{Limits: limits{CPUs: cpus, Memory: memory}}}
}

// otelEnv is the tracing configuration (OTLP gRPC to Jaeger) of one loteria process.
func otelEnv(env map[string]string, serviceName, instance string) {
	env["OTEL_SERVICE_NAME"] = serviceName
	env["OTEL_TRACES_EXPORTER"] = "otlp"
	env["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://" + JaegerService + ":" + port(JaegerOTLPGRPCPort)
	env["OTEL_EXPORTER_OTLP_PROTOCOL"] = "grpc"
	env["OTEL_TRACES_SAMPLER"] = "parentbased_always_on"
	// Metrics are scraped by Prometheus and logs go to stdout: nothing else is pushed.
	env["OTEL_METRICS_EXPORTER"] = "none"
	env["OTEL_LOGS_EXPORTER"] = "none"
	env["OTEL_RESOURCE_ATTRIBUTES"] = "service.namespace=loteria,service.instance.id=" + instance + ",deployment.environment.name=compose"
}

func hardened(s *service) {
	s.User = "65532:65532"
	s.ReadOnly = true
	s.SecurityOpt = []string{"no-new-privileges:true"}
	s.CapDrop = []string{"ALL"}
}

func (p *Plan) central(ps paths) (service, error) {
	o := p.Options
	ctx, err := ps.rel(o.Root)
	if err != nil {
		return service{}, err
	}
	env := map[string]string{
		"CLIENT_COUNT":     strconv.Itoa(o.Agencies),
		"SERVER_PORT":      port(CentralPort),
		"STORE_PATH":       CentralStore,
		"METRICS_ADDR":     ":" + port(CentralMetricsPort),
		"SHUTDOWN_TIMEOUT": seconds(CentralShutdownTimeout),
		"LOGGING_LEVEL":    o.LogLevel,
		"LOG_FORMAT":       o.LogFormat,
	}
	otelEnv(env, "loteria-central", CentralService)
	s := service{
		Image:         CentralImage,
		Build:         &build{Context: ctx, Dockerfile: DockerfilePath, Target: "central"},
		ContainerName: CentralService,
		Environment:   env,
		Expose:        []string{port(CentralPort), port(CentralMetricsPort)},
		Volumes: []mount{
			{Type: "volume", Source: "central-data", Target: CentralDataDir},
		},
		DependsOn: map[string]dependency{
			JaegerService: {Condition: "service_started", Required: true},
		},
		// Ready (listening, store recovered) rather than merely alive: agencies wait for it.
		Healthcheck: &healthcheck{
			Test:          []string{"CMD", CentralBinary, "healthcheck", "--url", "http://127.0.0.1:" + port(CentralMetricsPort) + "/readyz"},
			Interval:      "5s",
			Timeout:       "3s",
			Retries:       5,
			StartPeriod:   "30s",
			StartInterval: "1s",
		},
		StopSignal:      "SIGTERM",
		StopGracePeriod: seconds(CentralStopGrace),
		// Restarted after a crash (the store recovers), not after a clean exit.
		Restart:  "on-failure",
		Networks: []string{NetworkName},
		Deploy:   limit("1.0", "256M"),
		Logging:  defaultLogging(),
	}
	hardened(&s)
	return s, nil
}

func (p *Plan) agency(ps paths, i int) (service, error) {
	o := p.Options
	name := AgencyService(i)
	cfg, err := ps.rel(p.Configs[i-1].Path)
	if err != nil {
		return service{}, err
	}
	data, err := ps.rel(p.Data[i-1].Path)
	if err != nil {
		return service{}, err
	}
	env := map[string]string{
		"CLI_CONFIG":    AgencyConfig,
		"CLI_LOG_LEVEL": o.LogLevel,
		"LOG_FORMAT":    o.LogFormat,
		"METRICS_ADDR":  ":" + port(AgencyMetricsPort),
		"CLI_LINGER":    seconds(o.Linger),
	}
	otelEnv(env, "loteria-agency", name)
	s := service{
		Image:         AgencyImage,
		ContainerName: name,
		Environment:   env,
		Expose:        []string{port(AgencyMetricsPort)},
		Volumes: []mount{
			{Type: "bind", Source: cfg, Target: AgencyConfig, ReadOnly: true},
			{Type: "bind", Source: data, Target: AgencyDataDir + "/" + DataFileName(i), ReadOnly: true},
		},
		DependsOn: map[string]dependency{
			CentralService: {Condition: "service_healthy", Required: true},
		},
		Healthcheck: &healthcheck{
			Test:          []string{"CMD", AgencyBinary, "healthcheck", "--url", "http://127.0.0.1:" + port(AgencyMetricsPort) + "/healthz"},
			Interval:      "10s",
			Timeout:       "3s",
			Retries:       3,
			StartPeriod:   "10s",
			StartInterval: "1s",
		},
		StopSignal:      "SIGTERM",
		StopGracePeriod: seconds(AgencyStopGrace),
		// An agency runs once: it exits after its winners (and CLI_LINGER).
		Restart:  "no",
		Networks: []string{NetworkName},
		Deploy:   limit("0.5", "64M"),
		Logging:  defaultLogging(),
	}
	if i == 1 {
		// One service builds the agency image; the others use it and never pull it.
		ctx, err := ps.rel(o.Root)
		if err != nil {
			return service{}, err
		}
		s.Build = &build{Context: ctx, Dockerfile: DockerfilePath, Target: "agency"}
	} else {
		s.PullPolicy = "never"
	}
	hardened(&s)
	return s, nil
}

func (p *Plan) prometheus(ps paths) (service, error) {
	o := p.Options
	conf, err := ps.rel(filepath.Join(o.Root, PrometheusConfigPath))
	if err != nil {
		return service{}, err
	}
	rules, err := ps.rel(filepath.Join(o.Root, PrometheusRulesPath))
	if err != nil {
		return service{}, err
	}
	targets, err := ps.rel(filepath.Dir(p.Targets.Path))
	if err != nil {
		return service{}, err
	}
	return service{
		Image:         PrometheusImage,
		ContainerName: PrometheusService,
		Command: []string{
			"--config.file=" + PrometheusConf,
			"--storage.tsdb.path=" + PrometheusData,
			"--storage.tsdb.retention.time=7d",
			"--web.listen-address=:" + port(PrometheusPort),
			"--web.enable-lifecycle",
			"--enable-feature=exemplar-storage",
		},
		Ports: []string{localPort(PrometheusPort)},
		Volumes: []mount{
			{Type: "bind", Source: conf, Target: PrometheusConf, ReadOnly: true},
			{Type: "bind", Source: rules, Target: PrometheusRules, ReadOnly: true},
			{Type: "bind", Source: targets, Target: PrometheusSD, ReadOnly: true},
			{Type: "volume", Source: "prometheus-data", Target: PrometheusData},
		},
		// The image is busybox-based: wget is there.
		Healthcheck: &healthcheck{
			Test:        []string{"CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:" + port(PrometheusPort) + "/-/ready"},
			Interval:    "10s",
			Timeout:     "3s",
			Retries:     5,
			StartPeriod: "20s",
		},
		StopGracePeriod: "30s",
		Restart:         "unless-stopped",
		Networks:        []string{NetworkName},
		Deploy:          limit("1.0", "512M"),
		Logging:         defaultLogging(),
	}, nil
}

func (p *Plan) grafana(ps paths) (service, error) {
	o := p.Options
	prov, err := ps.rel(filepath.Join(o.Root, GrafanaProvPath))
	if err != nil {
		return service{}, err
	}
	dash, err := ps.rel(filepath.Join(o.Root, DashboardsPath))
	if err != nil {
		return service{}, err
	}
	return service{
		Image:         GrafanaImage,
		ContainerName: GrafanaService,
		Environment: map[string]string{
			"GF_PATHS_PROVISIONING":                     GrafanaProv,
			"GF_AUTH_ANONYMOUS_ENABLED":                 "true",
			"GF_AUTH_ANONYMOUS_ORG_ROLE":                "Viewer",
			"GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH": GrafanaDash + "/" + HomeDashboard,
			"GF_ANALYTICS_REPORTING_ENABLED":            "false",
			"GF_ANALYTICS_CHECK_FOR_UPDATES":            "false",
			"GF_NEWS_NEWS_FEED_ENABLED":                 "false",
			"GF_LOG_LEVEL":                              "warn",
		},
		Ports: []string{localPort(GrafanaPort)},
		Volumes: []mount{
			{Type: "bind", Source: prov, Target: GrafanaProv, ReadOnly: true},
			{Type: "bind", Source: dash, Target: GrafanaDash, ReadOnly: true},
		},
		DependsOn: map[string]dependency{
			PrometheusService: {Condition: "service_healthy", Required: true},
			JaegerService:     {Condition: "service_started", Required: true},
		},
		// The image is Alpine-based: busybox wget is there.
		Healthcheck: &healthcheck{
			Test:        []string{"CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:" + port(GrafanaPort) + "/api/health"},
			Interval:    "10s",
			Timeout:     "3s",
			Retries:     5,
			StartPeriod: "30s",
		},
		Restart:  "unless-stopped",
		Networks: []string{NetworkName},
		Deploy:   limit("1.0", "256M"),
		Logging:  defaultLogging(),
	}, nil
}

func jaeger() service {
	return service{
		Image:         JaegerImage,
		ContainerName: JaegerService,
		// All-in-one with in-memory storage: OTLP in, UI and query API out, its own metrics.
		Expose:   []string{port(JaegerOTLPGRPCPort), port(JaegerOTLPHTTPPort), port(JaegerMetricsPort)},
		Ports:    []string{localPort(JaegerUIPort)},
		Restart:  "unless-stopped",
		Networks: []string{NetworkName},
		Deploy:   limit("1.0", "512M"),
		Logging:  defaultLogging(),
	}
}

// composeDocument renders the compose file: services in a fixed, readable order (central,
// agency1..agencyN, prometheus, grafana, jaeger), maps sorted by key.
func composeDocument(p *Plan) ([]byte, error) {
	ps := paths{base: filepath.Dir(p.Options.Output)}
	type named struct {
		name string
		svc  service
	}
	var services []named
	c, err := p.central(ps)
	if err != nil {
		return nil, err
	}
	services = append(services, named{CentralService, c})
	for i := 1; i <= p.Options.Agencies; i++ {
		a, err := p.agency(ps, i)
		if err != nil {
			return nil, err
		}
		services = append(services, named{AgencyService(i), a})
	}
	prom, err := p.prometheus(ps)
	if err != nil {
		return nil, err
	}
	graf, err := p.grafana(ps)
	if err != nil {
		return nil, err
	}
	services = append(services, named{PrometheusService, prom}, named{GrafanaService, graf}, named{JaegerService, jaeger()})

	svcNode := &yaml.Node{Kind: yaml.MappingNode}
	for _, s := range services {
		var v yaml.Node
		if err := v.Encode(s.svc); err != nil {
			return nil, fmt.Errorf("encode service %s: %w", s.name, err)
		}
		svcNode.Content = append(svcNode.Content, scalar(s.name), &v)
	}
	var nets, vols yaml.Node
	if err := nets.Encode(map[string]network{NetworkName: {Name: ProjectName, Driver: "bridge"}}); err != nil {
		return nil, fmt.Errorf("encode networks: %w", err)
	}
	if err := vols.Encode(map[string]volume{
		"central-data":    {Name: ProjectName + "-central-data"},
		"prometheus-data": {Name: ProjectName + "-prometheus-data"},
	}); err != nil {
		return nil, fmt.Errorf("encode volumes: %w", err)
	}
	root := &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{
		scalar("name"), scalar(ProjectName),
		scalar("services"), svcNode,
		scalar("networks"), &nets,
		scalar("volumes"), &vols,
	}}
	quoteColons(root)
	doc := &yaml.Node{
		Kind: yaml.DocumentNode,
		HeadComment: fmt.Sprintf("Lotería Nacional stack with %d agencies.\n"+
			"Generated by deploy/cmd/generar-compose (make compose AGENCIES=%d); do not edit by hand.\n"+
			"Grafana http://localhost:%d  Prometheus http://localhost:%d  Jaeger http://localhost:%d",
			p.Options.Agencies, p.Options.Agencies, GrafanaPort, PrometheusPort, JaegerUIPort),
		Content: []*yaml.Node{root},
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("encode compose file: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encode compose file: %w", err)
	}
	return buf.Bytes(), nil
}

// quoteColons double-quotes string values that contain a colon (ports, user:group, addresses),
// which YAML readers would otherwise be free to misread.
func quoteColons(n *yaml.Node) {
	if n.Kind == yaml.MappingNode {
		for i := 1; i < len(n.Content); i += 2 {
			quoteColons(n.Content[i])
		}
		return
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!str" && strings.Contains(n.Value, ":") {
		n.Style = yaml.DoubleQuotedStyle
	}
	for _, c := range n.Content {
		quoteColons(c)
	}
}

func scalar(s string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
}
