package compose_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/loteria/loteria/internal/testenv"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"go.yaml.in/yaml/v3"

	"github.com/loteria/loteria/dashboards"
	"github.com/loteria/loteria/deploy/compose"
	"github.com/loteria/loteria/services/agency"
	"github.com/loteria/loteria/services/central"
)

// courseData is the course's dataset beside the repository, when it is there.
func courseData(root string) string {
	dir := filepath.Join(root, "..", "shared", "datasets", "tp0")
	if _, err := os.Stat(filepath.Join(dir, compose.DataFileName(1))); err != nil {
		return ""
	}
	return dir
}

// generated is a stack written into a temporary directory and loaded back with compose-go.
type generated struct {
	root    string
	plan    *compose.Plan
	project *types.Project
	// produced lists the host paths the stack needs that are generated rather than committed:
	// the plan's files and the data files the gendata tool writes.
	produced map[string]bool
}

func generate(t *testing.T, n int) generated {
	t.Helper()
	root := testenv.RepoRoot(t)
	dir := t.TempDir()
	plan, err := compose.NewPlan(compose.Options{
		Agencies:         n,
		Root:             root,
		Output:           filepath.Join(dir, "out", "docker-compose.yaml"),
		DataDir:          courseData(root),
		GeneratedDataDir: filepath.Join(dir, "data"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := plan.Write(); err != nil {
		t.Fatal(err)
	}
	produced := map[string]bool{}
	for _, f := range plan.Files() {
		produced[f.Path] = true
	}
	for _, d := range plan.Data {
		if d.Generated {
			produced[d.Path] = true
		}
	}
	opts, err := cli.NewProjectOptions(
		[]string{plan.Compose.Path},
		cli.WithWorkingDirectory(filepath.Dir(plan.Compose.Path)),
		cli.WithResolvedPaths(true),
		cli.WithInterpolation(true),
		cli.WithNormalization(true),
		cli.WithConsistency(true),
	)
	if err != nil {
		t.Fatal(err)
	}
	project, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("compose-go rejects the generated file: %v", err)
	}
	return generated{root: root, plan: plan, project: project, produced: produced}
}

var sizes = []int{1, 5, 100}

func TestGeneratedStackLoads(t *testing.T) {
	for _, n := range sizes {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			g := generate(t, n)
			checkServices(t, g, n)
			checkHealthDependencies(t, g)
			checkMounts(t, g)
			checkCentral(t, g, n)
			checkAgencies(t, g, n)
			checkLimitsAndImages(t, g)
			checkTracing(t, g)
			checkPrometheusTargets(t, g, n)
			checkGrafana(t, g)
		})
	}
}

func service(t *testing.T, g generated, name string) types.ServiceConfig {
	t.Helper()
	s, ok := g.project.Services[name]
	if !ok {
		t.Fatalf("no service %q", name)
	}
	return s
}

func env(s types.ServiceConfig, key string) string {
	if v, ok := s.Environment[key]; ok && v != nil {
		return *v
	}
	return ""
}

func checkServices(t *testing.T, g generated, n int) {
	want := []string{compose.CentralService, compose.PrometheusService, compose.GrafanaService, compose.JaegerService}
	for i := 1; i <= n; i++ {
		want = append(want, compose.AgencyService(i))
	}
	slices.Sort(want)
	got := g.project.ServiceNames()
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("services %v, want %v", got, want)
	}
	if g.project.Name != compose.ProjectName {
		t.Errorf("project name %q, want %q", g.project.Name, compose.ProjectName)
	}
	if len(g.project.Networks) != 1 {
		t.Errorf("networks %v, want exactly one", g.project.NetworkNames())
	}
	for name, s := range g.project.Services {
		if s.ContainerName != name {
			t.Errorf("service %s: container_name %q, want %q", name, s.ContainerName, name)
		}
		if _, ok := s.Networks[compose.NetworkName]; !ok || len(s.Networks) != 1 {
			t.Errorf("service %s: networks %v, want only %s", name, slices.Collect(maps.Keys(s.Networks)), compose.NetworkName)
		}
	}
}

// checkHealthDependencies: a service_healthy dependency on a service without a healthcheck
// would never start.
func checkHealthDependencies(t *testing.T, g generated) {
	for name, s := range g.project.Services {
		for dep, d := range s.DependsOn {
			target, ok := g.project.Services[dep]
			if !ok {
				t.Errorf("%s depends on unknown service %s", name, dep)
				continue
			}
			if d.Condition == types.ServiceConditionHealthy && (target.HealthCheck == nil || target.HealthCheck.Disable || len(target.HealthCheck.Test) == 0) {
				t.Errorf("%s waits for %s to be healthy, but %s has no healthcheck", name, dep, dep)
			}
		}
	}
	for i := 1; i <= len(g.plan.Configs); i++ {
		d, ok := service(t, g, compose.AgencyService(i)).DependsOn[compose.CentralService]
		if !ok || d.Condition != types.ServiceConditionHealthy {
			t.Errorf("agency%d does not wait for a healthy central: %+v", i, d)
		}
	}
}

// checkMounts: every bind-mounted host path exists in the repository or is generated (by this
// generator or, for data files, by the gendata tool).
func checkMounts(t *testing.T, g generated) {
	for name, s := range g.project.Services {
		for _, v := range s.Volumes {
			switch v.Type {
			case types.VolumeTypeBind:
				if !filepath.IsAbs(v.Source) {
					t.Errorf("%s: bind source %q was not resolved to an absolute path", name, v.Source)
					continue
				}
				if g.produced[v.Source] {
					continue
				}
				if _, err := os.Stat(v.Source); err != nil {
					t.Errorf("%s: bind mount %s -> %s: host path neither exists nor is generated: %v", name, v.Source, v.Target, err)
				}
				if !v.ReadOnly {
					t.Errorf("%s: bind mount %s is writable; configs and data are mounted read-only", name, v.Target)
				}
			case types.VolumeTypeVolume:
				if _, ok := g.project.Volumes[v.Source]; !ok {
					t.Errorf("%s: named volume %q is not declared", name, v.Source)
				}
			default:
				t.Errorf("%s: unexpected mount type %q", name, v.Type)
			}
		}
	}
}

// hostPath maps a path inside a service's container to the host path mounted there.
func hostPath(s types.ServiceConfig, containerPath string) (string, bool) {
	best := -1
	var out string
	for _, v := range s.Volumes {
		if v.Type != types.VolumeTypeBind {
			continue
		}
		rel, ok := strings.CutPrefix(containerPath, v.Target)
		if !ok || (rel != "" && !strings.HasPrefix(rel, "/")) || len(v.Target) <= best {
			continue
		}
		best = len(v.Target)
		out = filepath.Join(v.Source, filepath.FromSlash(rel))
	}
	return out, best >= 0
}

func checkCentral(t *testing.T, g generated, n int) {
	c := service(t, g, compose.CentralService)
	if got := env(c, "CLIENT_COUNT"); got != strconv.Itoa(n) {
		t.Errorf("central CLIENT_COUNT=%q, want %d", got, n)
	}
	store := env(c, "STORE_PATH")
	onVolume := false
	for _, v := range c.Volumes {
		if v.Type == types.VolumeTypeVolume && strings.HasPrefix(store, v.Target+"/") {
			onVolume = true
		}
	}
	if store == "" || !onVolume {
		t.Errorf("central STORE_PATH=%q is not on a named volume", store)
	}
	shutdown, err := time.ParseDuration(env(c, "SHUTDOWN_TIMEOUT"))
	if err != nil {
		t.Fatalf("central SHUTDOWN_TIMEOUT: %v", err)
	}
	if shutdown < compose.CentralShutdownTimeout {
		t.Errorf("central SHUTDOWN_TIMEOUT %s below the documented %s", shutdown, compose.CentralShutdownTimeout)
	}
	for name, s := range g.project.Services {
		if s.Image != compose.CentralImage && s.Image != compose.AgencyImage {
			continue
		}
		if s.StopGracePeriod == nil || time.Duration(*s.StopGracePeriod) <= shutdown {
			t.Errorf("%s: stop_grace_period %v does not leave room for a %s graceful shutdown", name, s.StopGracePeriod, shutdown)
		}
	}
	checkHealthcheck(t, "central", c, compose.CentralBinary)
	if !exposes(c, compose.CentralPort) {
		t.Errorf("central does not expose its agency port %d", compose.CentralPort)
	}
}

// checkHealthcheck: the image is scratch, so the healthcheck runs the binary's healthcheck
// subcommand against the process's own metrics port.
func checkHealthcheck(t *testing.T, name string, s types.ServiceConfig, binary string) {
	t.Helper()
	hc := s.HealthCheck
	if hc == nil || len(hc.Test) < 3 {
		t.Errorf("%s: no usable healthcheck: %+v", name, hc)
		return
	}
	if hc.Test[0] != "CMD" || hc.Test[1] != binary || hc.Test[2] != "healthcheck" {
		t.Errorf("%s: healthcheck %v, want [CMD %s healthcheck ...] (no shell in a scratch image)", name, hc.Test, binary)
	}
	_, metricsPort, err := net.SplitHostPort(env(s, "METRICS_ADDR"))
	if err != nil {
		t.Errorf("%s: METRICS_ADDR %q: %v", name, env(s, "METRICS_ADDR"), err)
		return
	}
	i := slices.Index(hc.Test, "--url")
	if i < 0 || i+1 >= len(hc.Test) {
		return // the subcommand's default URL
	}
	u, err := url.Parse(hc.Test[i+1])
	if err != nil {
		t.Errorf("%s: healthcheck url: %v", name, err)
		return
	}
	if u.Port() != metricsPort || (u.Path != "/healthz" && u.Path != "/readyz") {
		t.Errorf("%s: healthcheck url %s does not match METRICS_ADDR port %s and /healthz or /readyz", name, u, metricsPort)
	}
}

type agencyConfig struct {
	ID     int `yaml:"id"`
	Server struct {
		Address string `yaml:"address"`
	} `yaml:"server"`
	Batch struct {
		MaxAmount int `yaml:"maxAmount"`
	} `yaml:"batch"`
	Data struct {
		Path string `yaml:"path"`
	} `yaml:"data"`
}

func checkAgencies(t *testing.T, g generated, n int) {
	central := service(t, g, compose.CentralService)
	for i := 1; i <= n; i++ {
		name := compose.AgencyService(i)
		a := service(t, g, name)
		checkHealthcheck(t, name, a, compose.AgencyBinary)
		if env(a, "CLI_LINGER") == "" {
			t.Errorf("%s: no CLI_LINGER: Prometheus may miss the final counters", name)
		}
		cfgPath, ok := hostPath(a, env(a, "CLI_CONFIG"))
		if !ok {
			t.Errorf("%s: CLI_CONFIG=%q is not a mounted file", name, env(a, "CLI_CONFIG"))
			continue
		}
		data, err := os.ReadFile(cfgPath)
		if err != nil {
			t.Errorf("%s: config: %v", name, err)
			continue
		}
		var cfg agencyConfig
		if err := yaml.Unmarshal(data, &cfg); err != nil {
			t.Errorf("%s: config %s: %v", name, cfgPath, err)
			continue
		}
		if cfg.ID != i {
			t.Errorf("%s: config id %d", name, cfg.ID)
		}
		if cfg.Batch.MaxAmount < 1 {
			t.Errorf("%s: config batch.maxAmount %d", name, cfg.Batch.MaxAmount)
		}
		host, p, err := net.SplitHostPort(cfg.Server.Address)
		if err != nil || host != compose.CentralService || p != env(central, "SERVER_PORT") || !exposes(central, mustAtoi(t, p)) {
			t.Errorf("%s: server.address %q does not reach the central (%s:%s)", name, cfg.Server.Address, compose.CentralService, env(central, "SERVER_PORT"))
		}
		dataHost, ok := hostPath(a, cfg.Data.Path)
		if !ok {
			t.Errorf("%s: data.path %q is not mounted", name, cfg.Data.Path)
			continue
		}
		want := g.plan.Data[i-1].Path
		if dataHost != want {
			t.Errorf("%s: data.path is mounted from %s, want %s", name, dataHost, want)
		}
		if src := courseData(g.root); src != "" && i <= 5 && g.plan.Data[i-1].Generated {
			t.Errorf("%s: uses generated data although %s has its file", name, src)
		}
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Errorf("port %q: %v", s, err)
	}
	return n
}

func exposes(s types.ServiceConfig, port int) bool {
	for _, e := range s.Expose {
		if e == strconv.Itoa(port) {
			return true
		}
	}
	for _, p := range s.Ports {
		if int(p.Target) == port {
			return true
		}
	}
	return false
}

func checkLimitsAndImages(t *testing.T, g generated) {
	dockerfile, err := os.ReadFile(filepath.Join(g.root, compose.DockerfilePath))
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range g.project.Services {
		if s.Deploy == nil || s.Deploy.Resources.Limits == nil || s.Deploy.Resources.Limits.MemoryBytes <= 0 {
			t.Errorf("%s: no memory limit", name)
		}
		img := s.Image
		if i := strings.LastIndex(img, ":"); i < 0 || strings.Contains(img[i:], "/") || strings.HasSuffix(img, ":latest") {
			t.Errorf("%s: image %q is not pinned to a version", name, img)
		}
		if s.Build != nil {
			if !bytes.Contains(dockerfile, []byte(" AS "+s.Build.Target+"\n")) {
				t.Errorf("%s: build target %q is not a stage of %s", name, s.Build.Target, compose.DockerfilePath)
			}
			if s.Build.Context != g.root {
				t.Errorf("%s: build context %s, want the repository root %s", name, s.Build.Context, g.root)
			}
		}
	}
	for _, bin := range []string{compose.CentralBinary, compose.AgencyBinary} {
		if !bytes.Contains(dockerfile, []byte(bin)) {
			t.Errorf("%s does not install %s, which the healthchecks run", compose.DockerfilePath, bin)
		}
	}
	// Images built here: one service builds each, the rest never pull it.
	builders := map[string]int{}
	for name, s := range g.project.Services {
		if s.Image != compose.CentralImage && s.Image != compose.AgencyImage {
			continue
		}
		if s.Build != nil {
			builders[s.Image]++
		} else if s.PullPolicy != types.PullPolicyNever {
			t.Errorf("%s: uses local image %s without building it and may try to pull it", name, s.Image)
		}
	}
	for _, img := range []string{compose.CentralImage, compose.AgencyImage} {
		if builders[img] != 1 {
			t.Errorf("image %s is built by %d services, want 1", img, builders[img])
		}
	}
}

func checkTracing(t *testing.T, g generated) {
	for name, s := range g.project.Services {
		if s.Image != compose.CentralImage && s.Image != compose.AgencyImage {
			continue
		}
		for _, k := range []string{"OTEL_SERVICE_NAME", "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_RESOURCE_ATTRIBUTES", "LOG_FORMAT"} {
			if env(s, k) == "" {
				t.Errorf("%s: %s not set", name, k)
			}
		}
		if env(s, "LOGGING_LEVEL") == "" && env(s, "CLI_LOG_LEVEL") == "" {
			t.Errorf("%s: no log level", name)
		}
		u, err := url.Parse(env(s, "OTEL_EXPORTER_OTLP_ENDPOINT"))
		if err != nil || u.Hostname() == "" {
			t.Errorf("%s: OTEL_EXPORTER_OTLP_ENDPOINT %q: %v", name, env(s, "OTEL_EXPORTER_OTLP_ENDPOINT"), err)
			continue
		}
		target, ok := g.project.Services[u.Hostname()]
		if !ok || !exposes(target, mustAtoi(t, u.Port())) {
			t.Errorf("%s: OTLP endpoint %s is not a service port", name, u)
		}
		if env(s, "OTEL_EXPORTER_OTLP_PROTOCOL") == "grpc" && u.Port() != strconv.Itoa(compose.JaegerOTLPGRPCPort) {
			t.Errorf("%s: OTLP gRPC to port %s, want %d", name, u.Port(), compose.JaegerOTLPGRPCPort)
		}
	}
}

type promConfig struct {
	RuleFiles     []string `yaml:"rule_files"`
	ScrapeConfigs []struct {
		JobName       string `yaml:"job_name"`
		StaticConfigs []struct {
			Targets []string `yaml:"targets"`
		} `yaml:"static_configs"`
		FileSDConfigs []struct {
			Files []string `yaml:"files"`
		} `yaml:"file_sd_configs"`
	} `yaml:"scrape_configs"`
}

// checkPrometheusTargets: every target Prometheus scrapes (static and file_sd) is a compose
// service and a port it exposes, where its METRICS_ADDR listens; every agency is scraped once.
func checkPrometheusTargets(t *testing.T, g generated, n int) {
	prom := service(t, g, compose.PrometheusService)
	confPath, ok := hostPath(prom, compose.PrometheusConf)
	if !ok {
		t.Fatalf("prometheus: %s is not mounted", compose.PrometheusConf)
	}
	if !slices.Contains(prom.Command, "--config.file="+compose.PrometheusConf) {
		t.Errorf("prometheus command %v does not read %s", prom.Command, compose.PrometheusConf)
	}
	if !slices.Contains(prom.Command, "--enable-feature=exemplar-storage") {
		t.Errorf("prometheus command %v does not enable exemplar storage", prom.Command)
	}
	data, err := os.ReadFile(confPath)
	if err != nil {
		t.Fatal(err)
	}
	var conf promConfig
	if err := yaml.Unmarshal(data, &conf); err != nil {
		t.Fatalf("%s: %v", confPath, err)
	}
	for _, rf := range conf.RuleFiles {
		host, ok := hostPath(prom, rf)
		if !ok {
			t.Errorf("prometheus rule_files %s: not under a mount", rf)
			continue
		}
		m, _ := filepath.Glob(host)
		if len(m) == 0 {
			t.Errorf("prometheus rule_files %s matches no file (host %s)", rf, host)
		}
	}
	scraped := map[string]int{}
	for _, sc := range conf.ScrapeConfigs {
		var targets []string
		for _, st := range sc.StaticConfigs {
			targets = append(targets, st.Targets...)
		}
		for _, fsd := range sc.FileSDConfigs {
			for _, f := range fsd.Files {
				host, ok := hostPath(prom, f)
				if !ok {
					t.Errorf("job %s: file_sd %s is not under a mount", sc.JobName, f)
					continue
				}
				raw, err := os.ReadFile(host)
				if err != nil {
					t.Errorf("job %s: file_sd %s: %v", sc.JobName, f, err)
					continue
				}
				var groups []compose.TargetGroup
				if err := json.Unmarshal(raw, &groups); err != nil {
					t.Errorf("job %s: file_sd %s: %v", sc.JobName, host, err)
					continue
				}
				for _, grp := range groups {
					targets = append(targets, grp.Targets...)
					if len(grp.Targets) != 1 || grp.Labels["agency"] == "" || grp.Targets[0] != compose.AgencyService(mustAtoi(t, grp.Labels["agency"]))+":"+strconv.Itoa(compose.AgencyMetricsPort) {
						t.Errorf("job %s: target group %+v: want one agency target labelled with its agency", sc.JobName, grp)
					}
				}
			}
		}
		if len(targets) == 0 {
			t.Errorf("job %s has no targets", sc.JobName)
		}
		for _, target := range targets {
			host, p, err := net.SplitHostPort(target)
			if err != nil {
				t.Errorf("job %s: target %q: %v", sc.JobName, target, err)
				continue
			}
			svcName := host
			if host == "localhost" || host == "127.0.0.1" {
				svcName = compose.PrometheusService // Prometheus scraping itself
			}
			s, ok := g.project.Services[svcName]
			if !ok {
				t.Errorf("job %s: target %s is not a compose service", sc.JobName, target)
				continue
			}
			if !exposes(s, mustAtoi(t, p)) {
				t.Errorf("job %s: target %s: service %s does not expose port %s", sc.JobName, target, svcName, p)
			}
			if addr := env(s, "METRICS_ADDR"); addr != "" {
				if _, mp, _ := net.SplitHostPort(addr); mp != p {
					t.Errorf("job %s: target %s, but %s serves metrics on %q", sc.JobName, target, svcName, addr)
				}
			}
			scraped[svcName]++
		}
	}
	for _, name := range []string{compose.CentralService, compose.PrometheusService} {
		if scraped[name] != 1 {
			t.Errorf("%s is scraped %d times, want 1", name, scraped[name])
		}
	}
	for i := 1; i <= n; i++ {
		if scraped[compose.AgencyService(i)] != 1 {
			t.Errorf("%s is scraped %d times, want 1", compose.AgencyService(i), scraped[compose.AgencyService(i)])
		}
	}
}

type grafanaDatasources struct {
	Datasources []struct {
		Name     string         `yaml:"name"`
		UID      string         `yaml:"uid"`
		Type     string         `yaml:"type"`
		URL      string         `yaml:"url"`
		JSONData map[string]any `yaml:"jsonData"`
	} `yaml:"datasources"`
}

type grafanaProviders struct {
	Providers []struct {
		Name    string `yaml:"name"`
		Type    string `yaml:"type"`
		Options struct {
			Path string `yaml:"path"`
		} `yaml:"options"`
	} `yaml:"providers"`
}

// checkGrafana: the provisioning files are where Grafana looks, the datasources reach their
// services with the uids the dashboards use, the dashboards provider reads a mounted directory
// holding every generated dashboard, and the home dashboard is one of them.
func checkGrafana(t *testing.T, g generated) {
	gf := service(t, g, compose.GrafanaService)
	provDir := env(gf, "GF_PATHS_PROVISIONING")
	if provDir == "" {
		provDir = "/etc/grafana/provisioning" // Grafana's default
	}
	provHost, ok := hostPath(gf, provDir)
	if !ok {
		t.Fatalf("grafana: provisioning dir %s is not mounted", provDir)
	}
	for _, k := range []string{"GF_AUTH_ANONYMOUS_ENABLED"} {
		if env(gf, k) != "true" {
			t.Errorf("grafana: %s=%q", k, env(gf, k))
		}
	}
	if env(gf, "GF_AUTH_ANONYMOUS_ORG_ROLE") != "Viewer" {
		t.Errorf("grafana: anonymous role %q, want Viewer", env(gf, "GF_AUTH_ANONYMOUS_ORG_ROLE"))
	}

	dsFiles, _ := filepath.Glob(filepath.Join(provHost, "datasources", "*.yml"))
	if len(dsFiles) == 0 {
		t.Fatalf("grafana: no datasource files in %s/datasources", provHost)
	}
	uids := map[string]string{}
	exemplarDest := map[string]string{} // datasource name -> uid its exemplars link to
	for _, f := range dsFiles {
		var ds grafanaDatasources
		readYAML(t, f, &ds)
		for _, d := range ds.Datasources {
			uids[d.UID] = d.Type
			u, err := url.Parse(d.URL)
			if err != nil {
				t.Errorf("datasource %s: url %q: %v", d.Name, d.URL, err)
				continue
			}
			s, ok := g.project.Services[u.Hostname()]
			if !ok || !exposes(s, mustAtoi(t, u.Port())) {
				t.Errorf("datasource %s: %s is not a service port", d.Name, d.URL)
			}
			if dests, ok := d.JSONData["exemplarTraceIdDestinations"].([]any); ok {
				for _, dest := range dests {
					m, _ := dest.(map[string]any)
					if m["name"] != "trace_id" {
						t.Errorf("datasource %s: exemplar destination %v: want the trace_id exemplar label", d.Name, m)
					}
					exemplarDest[d.Name] = fmt.Sprint(m["datasourceUid"])
				}
			}
		}
	}
	if len(exemplarDest) == 0 {
		t.Errorf("no datasource links exemplars to traces (exemplarTraceIdDestinations)")
	}
	for name, uid := range exemplarDest {
		if uids[uid] != "jaeger" {
			t.Errorf("datasource %s: exemplars link to datasource uid %q, which is not the provisioned Jaeger", name, uid)
		}
	}
	if uids[dashboards.PrometheusUID] != "prometheus" || uids[dashboards.JaegerUID] != "jaeger" {
		t.Errorf("datasources %v, want uid %q (prometheus) and %q (jaeger) as the dashboards expect", uids, dashboards.PrometheusUID, dashboards.JaegerUID)
	}

	provFiles, _ := filepath.Glob(filepath.Join(provHost, "dashboards", "*.yml"))
	if len(provFiles) == 0 {
		t.Fatalf("grafana: no dashboard provider files in %s/dashboards", provHost)
	}
	files, err := dashboards.Files()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range provFiles {
		var p grafanaProviders
		readYAML(t, f, &p)
		for _, pr := range p.Providers {
			dir, ok := hostPath(gf, pr.Options.Path)
			if !ok {
				t.Errorf("dashboard provider %s: path %s is not mounted", pr.Name, pr.Options.Path)
				continue
			}
			for _, df := range files {
				if _, err := os.Stat(filepath.Join(dir, df.Name)); err != nil {
					t.Errorf("dashboard provider %s: %s not in the mounted %s: %v", pr.Name, df.Name, dir, err)
				}
			}
		}
	}
	home := env(gf, "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
	homeHost, ok := hostPath(gf, home)
	if !ok {
		t.Fatalf("grafana: home dashboard %q is not mounted", home)
	}
	if _, err := os.Stat(homeHost); err != nil || !slices.ContainsFunc(files, func(f dashboards.File) bool { return f.Name == path.Base(home) }) {
		t.Errorf("grafana: home dashboard %s (%s) is not a generated dashboard: %v", home, homeHost, err)
	}
}

func readYAML(t *testing.T, file string, v any) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}

func TestPlanDeterministic(t *testing.T) {
	root := testenv.RepoRoot(t)
	dir := t.TempDir()
	opts := compose.Options{Agencies: 12, Root: root, Output: filepath.Join(dir, "c.yaml"), GenDir: filepath.Join(dir, "gen"), DataDir: courseData(root)}
	a, err := compose.NewPlan(opts)
	if err != nil {
		t.Fatal(err)
	}
	b, err := compose.NewPlan(opts)
	if err != nil {
		t.Fatal(err)
	}
	fa, fb := a.Files(), b.Files()
	if len(fa) != len(fb) {
		t.Fatalf("%d files, then %d", len(fa), len(fb))
	}
	for i := range fa {
		if fa[i].Path != fb[i].Path || !bytes.Equal(fa[i].Data, fb[i].Data) {
			t.Errorf("%s differs between two runs", fa[i].Path)
		}
	}
}

func TestPlanDataSelection(t *testing.T) {
	dir := t.TempDir()
	provided := filepath.Join(dir, "provided")
	if err := os.MkdirAll(provided, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{1, 3, 9} { // 9 > N: ignored
		if err := os.WriteFile(filepath.Join(provided, compose.DataFileName(i)), []byte("x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	plan, err := compose.NewPlan(compose.Options{
		Agencies: 4, Root: dir, Output: filepath.Join(dir, "c.yaml"),
		DataDir: provided, GeneratedDataDir: filepath.Join(dir, "gen-data"),
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []compose.DataFile{
		{Agency: 1, Path: filepath.Join(provided, "agency-1.csv")},
		{Agency: 2, Path: filepath.Join(dir, "gen-data", "agency-2.csv"), Generated: true},
		{Agency: 3, Path: filepath.Join(provided, "agency-3.csv")},
		{Agency: 4, Path: filepath.Join(dir, "gen-data", "agency-4.csv"), Generated: true},
	}
	if !slices.Equal(plan.Data, want) {
		t.Errorf("data files\n got %+v\nwant %+v", plan.Data, want)
	}
	if got := len(plan.MissingData()); got != 2 {
		t.Errorf("%d missing data files, want 2", got)
	}
	// The output is in the root: generated files go to .data/compose, not beside it.
	if want := filepath.Join(dir, ".data", "compose"); plan.Options.GenDir != want {
		t.Errorf("gen dir %s, want %s", plan.Options.GenDir, want)
	}
}

func TestPlanWriteRemovesStaleConfigs(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []int{6, 2} {
		plan, err := compose.NewPlan(compose.Options{Agencies: n, Root: dir, Output: filepath.Join(dir, "out", "c.yaml")})
		if err != nil {
			t.Fatal(err)
		}
		if err := plan.Write(); err != nil {
			t.Fatal(err)
		}
	}
	got, err := filepath.Glob(filepath.Join(dir, "out", "agencies", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Errorf("configs after generating for 6 then 2 agencies: %v", got)
	}
}

func TestOptionsRejected(t *testing.T) {
	tests := []struct {
		name string
		opts compose.Options
	}{
		{"no agencies", compose.Options{}},
		{"negative agencies", compose.Options{Agencies: -1}},
		{"bad log format", compose.Options{Agencies: 1, LogFormat: "xml"}},
		{"bad log level", compose.Options{Agencies: 1, LogLevel: "LOUD"}},
		{"bad batch", compose.Options{Agencies: 1, BatchMaxAmount: -5}},
		{"bad linger", compose.Options{Agencies: 1, Linger: -time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Root = t.TempDir()
			if _, err := compose.NewPlan(tt.opts); err == nil {
				t.Errorf("NewPlan(%+v) succeeded, want an error", tt.opts)
			}
		})
	}
}

// TestProgramsAcceptGeneratedConfig loads the generated settings with the central's and the
// agencies' own configuration loaders, as the containers will: the environment of each service,
// and for an agency its mounted config file. A renamed variable or YAML key fails here.
func TestProgramsAcceptGeneratedConfig(t *testing.T) {
	g := generate(t, 5)
	getenv := func(s types.ServiceConfig, override map[string]string) func(string) string {
		return func(k string) string {
			if v, ok := override[k]; ok {
				return v
			}
			return env(s, k)
		}
	}

	c := service(t, g, compose.CentralService)
	cc, err := central.LoadConfig(nil, getenv(c, nil), io.Discard)
	if err != nil {
		t.Fatalf("central rejects its compose environment: %v", err)
	}
	if len(cc.UnknownKeys) > 0 {
		t.Errorf("central: unknown keys %v", cc.UnknownKeys)
	}
	if cc.Server.Agencies != 5 || cc.StorePath != compose.CentralStore || cc.Port != strconv.Itoa(compose.CentralPort) {
		t.Errorf("central config: agencies %d, store %q, port %s", cc.Server.Agencies, cc.StorePath, cc.Port)
	}
	if _, p, _ := net.SplitHostPort(cc.MetricsAddr); p != strconv.Itoa(compose.CentralMetricsPort) {
		t.Errorf("central metrics address %q, want port %d", cc.MetricsAddr, compose.CentralMetricsPort)
	}
	if c.StopGracePeriod == nil || time.Duration(*c.StopGracePeriod) <= cc.Server.ShutdownTimeout {
		t.Errorf("central: stop_grace_period %v within its shutdown timeout %s", c.StopGracePeriod, cc.Server.ShutdownTimeout)
	}

	for i := 1; i <= 5; i++ {
		a := service(t, g, compose.AgencyService(i))
		cfgHost, ok := hostPath(a, env(a, "CLI_CONFIG"))
		if !ok {
			t.Fatalf("agency%d: config not mounted", i)
		}
		ac, err := agency.LoadConfig(nil, getenv(a, map[string]string{"CLI_CONFIG": cfgHost}), io.Discard)
		if err != nil {
			t.Fatalf("agency%d rejects its config: %v", i, err)
		}
		if len(ac.UnknownKeys) > 0 {
			t.Errorf("agency%d: unknown config keys %v", i, ac.UnknownKeys)
		}
		if ac.ID != i || ac.ServerAddress != compose.CentralService+":"+strconv.Itoa(compose.CentralPort) {
			t.Errorf("agency%d: id %d, server %q", i, ac.ID, ac.ServerAddress)
		}
		if dataHost, ok := hostPath(a, ac.DataPath); !ok || dataHost != g.plan.Data[i-1].Path {
			t.Errorf("agency%d: reads %s, mounted from %q, want %s", i, ac.DataPath, dataHost, g.plan.Data[i-1].Path)
		}
		if _, p, _ := net.SplitHostPort(ac.MetricsAddr); p != strconv.Itoa(compose.AgencyMetricsPort) {
			t.Errorf("agency%d: metrics address %q, want port %d", i, ac.MetricsAddr, compose.AgencyMetricsPort)
		}
		if ac.Linger <= 0 {
			t.Errorf("agency%d: linger %s: Prometheus may miss the final counters", i, ac.Linger)
		}
	}
}

// TestDockerBuildInputs checks that the Dockerfile builds packages that exist and that
// .dockerignore keeps what the build needs in the context.
func TestDockerBuildInputs(t *testing.T) {
	root := testenv.RepoRoot(t)
	dockerfile, err := os.ReadFile(filepath.Join(root, compose.DockerfilePath))
	if err != nil {
		t.Fatal(err)
	}
	pkgs := regexp.MustCompile(`go build [^\n]*?(\./services/cmd/[a-z]+)`).FindAllSubmatch(dockerfile, -1)
	if len(pkgs) != 2 {
		t.Errorf("Dockerfile builds %d programs, want central and agency", len(pkgs))
	}
	for _, m := range pkgs {
		if _, err := os.Stat(filepath.Join(root, string(m[1]), "main.go")); err != nil {
			t.Errorf("Dockerfile builds %s: %v", m[1], err)
		}
	}
	for _, stage := range []string{"central", "agency"} {
		if !bytes.Contains(dockerfile, []byte("FROM base AS "+stage+"\n")) {
			t.Errorf("Dockerfile has no %s stage on the scratch base", stage)
		}
	}
	if !bytes.Contains(dockerfile, []byte("FROM scratch AS base")) || !bytes.Contains(dockerfile, []byte("USER 65532:65532")) {
		t.Errorf("runtime image should be scratch with a non-root user")
	}
	ignore, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	needed := []string{"go.mod", "go.sum", "services/cmd/central/main.go", "services/agency/config.go", "observability/metrics.go"}
	for _, line := range strings.Split(string(ignore), "\n") {
		pattern := strings.TrimSpace(line)
		if pattern == "" || strings.HasPrefix(pattern, "#") || strings.HasPrefix(pattern, "!") {
			continue
		}
		pattern = strings.TrimPrefix(pattern, "**/")
		for _, n := range needed {
			for p := n; p != "."; p = path.Dir(p) {
				if ok, _ := path.Match(pattern, p); ok {
					t.Errorf(".dockerignore pattern %q excludes %s, which the build needs", line, n)
				}
			}
		}
	}
}
