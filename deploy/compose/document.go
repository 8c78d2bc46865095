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
// the order fields are written. Nothing here needs Compose newer than 2.0 or Docker Engine newer
// than 20.10: no container_name (two stacks could not run side by side), no start_interval in
// healthchecks (Docker Engine before 25 refuses it), no `required` in depends_on (Compose 2.20).

type service struct {
	Image           string                `yaml:"image"`
	Build           *build                `yaml:"build,omitempty"`
	PullPolicy      string                `yaml:"pull_policy,omitempty"`
	Profiles        []string              `yaml:"profiles,omitempty"`
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
	Context    string `yaml:"context"`
	Dockerfile string `yaml:"dockerfile"`
	Target     string `yaml:"target"`
}

type mount struct {
	Type     string `yaml:"type"`
	Source   string `yaml:"source"`
	Target   string `yaml:"target"`
	ReadOnly bool   `yaml:"read_only,omitempty"`
}

type dependency struct {
	Condition string `yaml:"condition"`
}

type healthcheck struct {
	Test        []string `yaml:"test"`
	Interval    string   `yaml:"interval"`
	Timeout     string   `yaml:"timeout"`
	Retries     int      `yaml:"retries"`
	StartPeriod string   `yaml:"start_period"`
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

// must collects the first error of several rel calls.
type relPaths struct {
	paths
	err error
}

func (r *relPaths) of(abs string) string {
	if r.err != nil {
		return ""
	}
	out, err := r.rel(abs)
	r.err = err
	return out
}

func seconds(d time.Duration) string { return strconv.Itoa(int(d/time.Second)) + "s" }

func port(n int) string { return strconv.Itoa(n) }

// published publishes a container port on ${LOTERIA_BIND:-127.0.0.1}, at the host port its
// variable names (default: the same number).
func published(hp HostPort) string {
	return "${" + BindVar + ":-127.0.0.1}:${" + hp.Var + ":-" + port(hp.Default) + "}:" + port(hp.Container)
}

func (p *Plan) ports(service string) []string {
	var out []string
	for _, hp := range HostPorts(p.Options.TLS) {
		if hp.Service == service {
			out = append(out, published(hp))
		}
	}
	return out
}

func defaultLogging() *logging {
	return &logging{Driver: "json-file", Options: map[string]string{"max-size": "10m", "max-file": "3"}}
}

func limit(cpus, memory string) *deploy {
	return &deploy{Resources: resources{Limits: limits{CPUs: cpus, Memory: memory}}}
}

// wget is the healthcheck of the third-party images that ship busybox (the Prometheus and
// Alertmanager images, Alpine-based Grafana and Jaeger).
func wget(url string, startPeriod string) *healthcheck {
	return &healthcheck{
		Test:        []string{"CMD", "wget", "-q", "-O", "/dev/null", url},
		Interval:    "10s",
		Timeout:     "3s",
		Retries:     5,
		StartPeriod: startPeriod,
	}
}

// selfcheck is the healthcheck of our scratch images, which have no shell: the binary's own
// healthcheck subcommand.
func selfcheck(binary, url, interval, startPeriod string, retries int) *healthcheck {
	return &healthcheck{
		Test:        []string{"CMD", binary, "healthcheck", "--url", url},
		Interval:    interval,
		Timeout:     "3s",
		Retries:     retries,
		StartPeriod: startPeriod,
	}
}

// otelEnv is the tracing configuration (OTLP gRPC to Jaeger) of one loteria process: a
// parent-based ratio sampler (agencies decide for their batches, the central follows) and a batch
// span processor sized to export every sampled span of a 100-agency run (the BSP* constants).
func (p *Plan) otelEnv(env map[string]string, serviceName, instance string) {
	env["OTEL_SERVICE_NAME"] = serviceName
	env["OTEL_TRACES_EXPORTER"] = "otlp"
	env["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://" + JaegerService + ":" + port(JaegerOTLPGRPCPort)
	env["OTEL_EXPORTER_OTLP_PROTOCOL"] = "grpc"
	env["OTEL_TRACES_SAMPLER"] = "parentbased_traceidratio"
	env["OTEL_TRACES_SAMPLER_ARG"] = strconv.FormatFloat(p.Options.Sampling, 'g', -1, 64)
	for k, v := range BSPEnv() {
		env[k] = v
	}
	// Metrics are scraped by Prometheus and logs go to stdout: nothing else is pushed.
	env["OTEL_METRICS_EXPORTER"] = "none"
	env["OTEL_LOGS_EXPORTER"] = "none"
	env["OTEL_RESOURCE_ATTRIBUTES"] = "service.namespace=loteria,service.instance.id=" + instance + ",deployment.environment.name=compose"
}

// BSPEnv is the OTEL_BSP_* environment of the stack's loteria processes (milliseconds, as the
// OpenTelemetry specification says).
func BSPEnv() map[string]string {
	return map[string]string{
		"OTEL_BSP_MAX_QUEUE_SIZE":        strconv.Itoa(BSPMaxQueueSize),
		"OTEL_BSP_MAX_EXPORT_BATCH_SIZE": strconv.Itoa(BSPMaxExportBatchSize),
		"OTEL_BSP_SCHEDULE_DELAY":        strconv.FormatInt(BSPScheduleDelay.Milliseconds(), 10),
		"OTEL_BSP_EXPORT_TIMEOUT":        strconv.FormatInt(BSPExportTimeout.Milliseconds(), 10),
	}
}

func hardened(s *service) {
	s.User = "65532:65532"
	s.ReadOnly = true
	s.SecurityOpt = []string{"no-new-privileges:true"}
	s.CapDrop = []string{"ALL"}
}

func (p *Plan) localBuild(r *relPaths, target string) *build {
	return &build{Context: r.of(p.Options.Root), Dockerfile: DockerfilePath, Target: target}
}

func certMount(r *relPaths, host, name string) mount {
	return mount{Type: "bind", Source: r.of(host), Target: CertsDir + "/" + name, ReadOnly: true}
}

func (p *Plan) central(r *relPaths) service {
	o := p.Options
	env := map[string]string{
		"CLIENT_COUNT":     strconv.Itoa(o.AdmittedAgencies()),
		"SERVER_PORT":      port(CentralPort),
		"STORE_PATH":       CentralStore,
		"METRICS_ADDR":     ":" + port(CentralMetricsPort),
		"SHUTDOWN_TIMEOUT": seconds(CentralShutdownTimeout),
		"LOGGING_LEVEL":    o.LogLevel,
		"LOG_FORMAT":       o.LogFormat,
	}
	if o.OneShot() {
		env["ROUNDS"] = "1"
	} else {
		env["ROUNDS"] = "0"
		env["ROUND_CUTOFF"] = seconds(o.RoundCutoff)
	}
	expose := []string{port(CentralPort), port(CentralMetricsPort)}
	vols := []mount{{Type: "volume", Source: CentralVolume, Target: CentralDataDir}}
	if o.TLS {
		dir := p.CertsHostDir()
		env["TLS_PORT"] = port(CentralTLSPort)
		env["TLS_CERT"] = CertsDir + "/" + CentralCert
		env["TLS_KEY"] = CertsDir + "/" + CentralKey
		env["TLS_CA"] = CertsDir + "/" + CAFile
		expose = append(expose, port(CentralTLSPort))
		vols = append(vols,
			certMount(r, filepath.Join(dir, CAFile), CAFile),
			certMount(r, filepath.Join(dir, CentralCert), CentralCert),
			certMount(r, filepath.Join(dir, CentralKey), CentralKey))
	}
	p.otelEnv(env, "loteria-central", CentralService)
	s := service{
		Image:       CentralImage,
		Build:       p.localBuild(r, "central"),
		Environment: env,
		Expose:      expose,
		Ports:       p.ports(CentralService),
		Volumes:     vols,
		// Prometheus first, so the run's first values are scraped; Jaeger first, so its first
		// spans are exported.
		DependsOn: map[string]dependency{
			PrometheusService: {Condition: "service_healthy"},
			JaegerService:     {Condition: "service_healthy"},
		},
		// Ready (listening, store recovered) rather than merely alive: agencies wait for it.
		Healthcheck:     selfcheck(CentralBinary, "http://127.0.0.1:"+port(CentralMetricsPort)+"/readyz", "5s", "30s", 5),
		StopSignal:      "SIGTERM",
		StopGracePeriod: seconds(CentralStopGrace),
		// Restarted after a crash (the store recovers, the open round resumes), not after a
		// clean exit.
		Restart:  "on-failure",
		Networks: []string{NetworkName},
		// The span queue (BSPMaxQueueSize) may hold ~64 MiB at its fullest.
		Deploy:  limit("1.0", "512M"),
		Logging: defaultLogging(),
	}
	hardened(&s)
	return s
}

// agencyCommand is the agency's command line: the round and pacing settings (flags; their
// environment names are the agency's own business).
func (p *Plan) agencyCommand() []string {
	o := p.Options
	rate := strconv.FormatFloat(o.Rate, 'g', -1, 64)
	if o.OneShot() {
		return []string{"--rounds", "1", "--round-data", "file", "--rate", rate}
	}
	return []string{"--rounds", "0", "--round-data", "generate", "--bets-per-round", strconv.Itoa(o.BetsPerRound), "--rate", rate}
}

func (p *Plan) agency(r *relPaths, i int) service {
	o := p.Options
	name := AgencyService(i)
	env := map[string]string{
		"CLI_CONFIG":    AgencyConfig,
		"CLI_LOG_LEVEL": o.LogLevel,
		"LOG_FORMAT":    o.LogFormat,
		"METRICS_ADDR":  ":" + port(AgencyMetricsPort),
		"CLI_LINGER":    seconds(o.Linger),
	}
	vols := []mount{{Type: "bind", Source: r.of(p.Configs[i-1].Path), Target: AgencyConfig, ReadOnly: true}}
	if o.OneShot() {
		vols = append(vols, mount{Type: "bind", Source: r.of(p.Data[i-1].Path), Target: AgencyDataDir + "/" + DataFileName(i), ReadOnly: true})
	}
	if o.TLS {
		dir := p.CertsHostDir()
		env["CLI_TLS_CERT"] = CertsDir + "/agency.pem"
		env["CLI_TLS_KEY"] = CertsDir + "/agency-key.pem"
		env["CLI_TLS_CA"] = CertsDir + "/" + CAFile
		env["CLI_TLS_SERVER_NAME"] = CentralTLSName
		vols = append(vols,
			certMount(r, filepath.Join(dir, CAFile), CAFile),
			certMount(r, filepath.Join(dir, AgencyCert(i)), "agency.pem"),
			certMount(r, filepath.Join(dir, AgencyKey(i)), "agency-key.pem"))
	}
	p.otelEnv(env, "loteria-agency", name)
	restart := "on-failure" // a continuous agency resumes its stream after a crash
	if o.OneShot() {
		restart = "no" // it exits after its winners (and CLI_LINGER)
	}
	s := service{
		Image:       AgencyImage,
		Command:     p.agencyCommand(),
		Environment: env,
		Expose:      []string{port(AgencyMetricsPort)},
		Volumes:     vols,
		DependsOn: map[string]dependency{
			CentralService: {Condition: "service_healthy"},
		},
		Healthcheck:     selfcheck(AgencyBinary, "http://127.0.0.1:"+port(AgencyMetricsPort)+"/healthz", "10s", "10s", 3),
		StopSignal:      "SIGTERM",
		StopGracePeriod: seconds(AgencyStopGrace),
		Restart:         restart,
		Networks:        []string{NetworkName},
		Deploy:          limit("0.5", "128M"),
		Logging:         defaultLogging(),
	}
	if i == 1 {
		// One service builds the agency image; the others use it and never pull it.
		s.Build = p.localBuild(r, "agency")
	} else {
		s.PullPolicy = "never"
	}
	hardened(&s)
	return s
}

// LoadtestCommand is the load service's command line: its agencies follow the stack's (ids
// N+1..N+L) against the central's plaintext port, at a set total rate, for a set time.
func (p *Plan) LoadtestCommand() []string {
	o := p.Options
	return []string{
		"--addr", CentralService + ":" + port(CentralPort),
		"--agencies", strconv.Itoa(o.LoadAgencies),
		"--first-id", strconv.Itoa(o.Agencies + 1),
		"--rate", strconv.FormatFloat(o.LoadRate, 'g', -1, 64),
		"--duration", seconds(o.LoadDuration),
		"--metrics-addr", ":" + port(LoadtestMetricsPort),
		"--quiet",
	}
}

func (p *Plan) loadtest(r *relPaths) service {
	s := service{
		Image:    LoadtestImage,
		Build:    p.localBuild(r, "loadtest"),
		Profiles: []string{LoadProfile},
		Command:  p.LoadtestCommand(),
		Expose:   []string{port(LoadtestMetricsPort)},
		DependsOn: map[string]dependency{
			CentralService: {Condition: "service_healthy"},
		},
		// The image carries the agency binary for its healthcheck subcommand (the load tool has
		// none); it probes the load tool's own metrics server.
		Healthcheck:     selfcheck(AgencyBinary, "http://127.0.0.1:"+port(LoadtestMetricsPort)+"/healthz", "10s", "10s", 3),
		StopSignal:      "SIGTERM",
		StopGracePeriod: seconds(AgencyStopGrace),
		// One run per `docker compose --profile load up`: the report is in its log.
		Restart:  "no",
		Networks: []string{NetworkName},
		Deploy:   limit("1.0", "512M"),
		Logging:  defaultLogging(),
	}
	hardened(&s)
	return s
}

func (p *Plan) prometheus(r *relPaths) service {
	o := p.Options
	return service{
		Image: PrometheusImage,
		Command: []string{
			"--config.file=" + PrometheusConf,
			"--storage.tsdb.path=" + PrometheusData,
			"--storage.tsdb.retention.time=7d",
			"--web.listen-address=:" + port(PrometheusPort),
			"--web.enable-lifecycle",
			"--enable-feature=exemplar-storage",
		},
		Expose: []string{port(PrometheusPort)},
		Ports:  p.ports(PrometheusService),
		Volumes: []mount{
			{Type: "bind", Source: r.of(filepath.Join(o.Root, PrometheusConfigPath)), Target: PrometheusConf, ReadOnly: true},
			{Type: "bind", Source: r.of(filepath.Join(o.Root, PrometheusRulesPath)), Target: PrometheusRules, ReadOnly: true},
			{Type: "bind", Source: r.of(filepath.Dir(p.Targets.Path)), Target: PrometheusSD, ReadOnly: true},
			{Type: "volume", Source: PrometheusVolume, Target: PrometheusData},
		},
		Healthcheck:     wget("http://127.0.0.1:"+port(PrometheusPort)+"/-/ready", "20s"),
		StopGracePeriod: "30s",
		Restart:         "unless-stopped",
		Networks:        []string{NetworkName},
		Deploy:          limit("1.0", "512M"),
		Logging:         defaultLogging(),
	}
}

func (p *Plan) alertmanager(r *relPaths) service {
	o := p.Options
	return service{
		Image: AlertmanagerImage,
		Command: []string{
			"--config.file=" + AlertmanagerConf,
			"--storage.path=" + AlertmanagerData,
			"--web.listen-address=:" + port(AlertmanagerPort),
			// The UI's links (from Prometheus's alerts page too) point at the host's port.
			"--web.external-url=http://localhost:${LOTERIA_ALERTMANAGER_PORT:-" + port(AlertmanagerPort) + "}",
			"--cluster.listen-address=", // one instance: no gossip port
		},
		Expose: []string{port(AlertmanagerPort)},
		Ports:  p.ports(AlertmanagerService),
		Volumes: []mount{
			{Type: "bind", Source: r.of(filepath.Join(o.Root, AlertmanagerConfigPath)), Target: AlertmanagerConf, ReadOnly: true},
			{Type: "volume", Source: AlertmanagerVolume, Target: AlertmanagerData},
		},
		DependsOn: map[string]dependency{
			AlertlogService: {Condition: "service_healthy"},
		},
		Healthcheck: wget("http://127.0.0.1:"+port(AlertmanagerPort)+"/-/ready", "10s"),
		Restart:     "unless-stopped",
		Networks:    []string{NetworkName},
		Deploy:      limit("0.5", "128M"),
		Logging:     defaultLogging(),
	}
}

// alertlog is the receiver a user can see: Alertmanager posts its notifications to it and it logs
// one line per alert (`make logs SERVICE=alertlog`).
func (p *Plan) alertlog(r *relPaths) service {
	s := service{
		Image: AlertlogImage,
		Build: p.localBuild(r, "alertlog"),
		Environment: map[string]string{
			"ALERTLOG_ADDR": ":" + port(AlertlogPort),
			"LOG_FORMAT":    "tint",
		},
		Expose:      []string{port(AlertlogPort)},
		Healthcheck: selfcheck(AlertlogBinary, "http://127.0.0.1:"+port(AlertlogPort)+"/healthz", "10s", "5s", 3),
		Restart:     "unless-stopped",
		Networks:    []string{NetworkName},
		Deploy:      limit("0.25", "32M"),
		Logging:     defaultLogging(),
	}
	hardened(&s)
	return s
}

// JaegerURLVar is the Grafana container's variable holding the Jaeger UI's URL as the browser
// reaches it; the exemplar links of the provisioned Prometheus datasource use it.
const JaegerURLVar = "LOTERIA_JAEGER_URL"

func (p *Plan) grafana(r *relPaths) service {
	o := p.Options
	return service{
		Image: GrafanaImage,
		Environment: map[string]string{
			"GF_PATHS_PROVISIONING":                     GrafanaProv,
			"GF_AUTH_ANONYMOUS_ENABLED":                 "true",
			"GF_AUTH_ANONYMOUS_ORG_ROLE":                "Viewer",
			"GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH": GrafanaDash + "/" + HomeDashboard,
			"GF_ANALYTICS_REPORTING_ENABLED":            "false",
			"GF_ANALYTICS_CHECK_FOR_UPDATES":            "false",
			"GF_NEWS_NEWS_FEED_ENABLED":                 "false",
			"GF_LOG_LEVEL":                              "warn",
			JaegerURLVar:                                "http://localhost:${LOTERIA_JAEGER_PORT:-" + port(JaegerUIPort) + "}",
		},
		Expose: []string{port(GrafanaPort)},
		Ports:  p.ports(GrafanaService),
		Volumes: []mount{
			{Type: "bind", Source: r.of(filepath.Join(o.Root, GrafanaProvPath)), Target: GrafanaProv, ReadOnly: true},
			{Type: "bind", Source: r.of(filepath.Join(o.Root, DashboardsPath)), Target: GrafanaDash, ReadOnly: true},
		},
		DependsOn: map[string]dependency{
			PrometheusService:   {Condition: "service_healthy"},
			JaegerService:       {Condition: "service_healthy"},
			AlertmanagerService: {Condition: "service_healthy"},
		},
		Healthcheck: wget("http://127.0.0.1:"+port(GrafanaPort)+"/api/health", "30s"),
		Restart:     "unless-stopped",
		Networks:    []string{NetworkName},
		Deploy:      limit("1.0", "256M"),
		Logging:     defaultLogging(),
	}
}

func (p *Plan) jaeger() service {
	return service{
		Image: JaegerImage,
		// The image's all-in-one configuration: OTLP in, in-memory storage (100,000 traces), the
		// UI and query API, its own metrics on 8888, health on 13133.
		Expose:      []string{port(JaegerOTLPGRPCPort), port(JaegerOTLPHTTPPort), port(JaegerMetricsPort), port(JaegerHealthPort), port(JaegerUIPort)},
		Ports:       p.ports(JaegerService),
		Healthcheck: wget("http://127.0.0.1:"+port(JaegerHealthPort)+"/status", "10s"),
		Restart:     "unless-stopped",
		Networks:    []string{NetworkName},
		Deploy:      limit("1.0", "512M"),
		Logging:     defaultLogging(),
	}
}

// composeDocument renders the compose file: services in a fixed, readable order (central,
// agency1..agencyN, loadtest, prometheus, alertmanager, alertlog, grafana, jaeger), maps sorted by
// key.
func composeDocument(p *Plan) ([]byte, error) {
	r := &relPaths{paths: paths{base: filepath.Dir(p.Options.Output)}}
	type named struct {
		name string
		svc  service
	}
	services := []named{{CentralService, p.central(r)}}
	for i := 1; i <= p.Options.Agencies; i++ {
		services = append(services, named{AgencyService(i), p.agency(r, i)})
	}
	if p.Options.LoadAgencies > 0 {
		services = append(services, named{LoadtestService, p.loadtest(r)})
	}
	services = append(services,
		named{PrometheusService, p.prometheus(r)},
		named{AlertmanagerService, p.alertmanager(r)},
		named{AlertlogService, p.alertlog(r)},
		named{GrafanaService, p.grafana(r)},
		named{JaegerService, p.jaeger()})
	if r.err != nil {
		return nil, r.err
	}

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
		CentralVolume:      {Name: ProjectName + "-" + CentralVolume},
		PrometheusVolume:   {Name: ProjectName + "-" + PrometheusVolume},
		AlertmanagerVolume: {Name: ProjectName + "-" + AlertmanagerVolume},
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
	o := p.Options
	mode := fmt.Sprintf("continuous rounds (a round's sales close after %s), agencies looping at %g bets/s", o.RoundCutoff, o.Rate)
	if o.OneShot() {
		mode = fmt.Sprintf("one round, each agency sending its file once at %g bets/s", o.Rate)
	}
	head := fmt.Sprintf("Lotería Nacional stack: %d agencies, %s.\n"+
		"Generated by deploy/cmd/generar-compose (make compose; settings in %s); do not edit by hand.\n"+
		"Host ports (loopback): Grafana %d, Prometheus %d, Alertmanager %d, Jaeger %d; change them in a .env\n"+
		"file beside this one (%s lists them).",
		o.Agencies, mode, StampFile, GrafanaPort, PrometheusPort, AlertmanagerPort, JaegerUIPort, EnvExampleFile)
	if o.LoadAgencies > 0 {
		head += fmt.Sprintf("\nLoad profile: docker compose --profile %s up -d %s (%d agencies, ids %d..%d, %g bets/s for %s).",
			LoadProfile, LoadtestService, o.LoadAgencies, o.Agencies+1, o.Agencies+o.LoadAgencies, o.LoadRate, o.LoadDuration)
	}
	doc := &yaml.Node{Kind: yaml.DocumentNode, HeadComment: head, Content: []*yaml.Node{root}}
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
