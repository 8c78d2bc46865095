package promcheck

import (
	"fmt"
	"os"
	"path/filepath"

	"go.yaml.in/yaml/v3"
)

// Paths of the repository's Prometheus material, relative to the repository root.
const (
	MetricsDoc       = "docs/METRICS.md"
	PrometheusConfig = "deploy/prometheus/prometheus.yml"
	RulesGlob        = "deploy/prometheus/rules/*.yml"
	RuleTestsGlob    = "deploy/prometheus/tests/*.test.yml"
)

// Repo is the repository's view of Prometheus: the catalog of series (docs/METRICS.md, the
// scrape jobs' labels, `up`, the recording rules), the rules and the scrape job names.
type Repo struct {
	Catalog   *Catalog
	Rules     []Rule
	RuleFiles []string
	Jobs      []string
}

// LoadRepo reads docs/METRICS.md, deploy/prometheus/prometheus.yml and the rule files under
// root, checks every rule expression, and returns the catalog that dashboard queries are checked
// against.
func LoadRepo(root string) (*Repo, error) {
	doc, err := os.ReadFile(filepath.Join(root, MetricsDoc))
	if err != nil {
		return nil, fmt.Errorf("metrics doc: %w", err)
	}
	cat, err := ParseMetricsDoc(doc)
	if err != nil {
		return nil, err
	}
	jobs, err := ScrapeJobs(filepath.Join(root, PrometheusConfig))
	if err != nil {
		return nil, err
	}
	cat.AddLabels(map[string][]string{"job": jobs, "instance": nil})
	up := Series{Name: "up", Labels: map[string][]string{"job": jobs, "instance": nil}, Source: "Prometheus (scrape health)"}
	// The agency job's file_sd targets carry an agency label (deploy/compose writes them).
	up.Labels["agency"] = nil
	cat.Add(up)
	files, err := filepath.Glob(filepath.Join(root, RulesGlob))
	if err != nil {
		return nil, fmt.Errorf("rule files: %w", err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no rule files match %s", RulesGlob)
	}
	rules, err := LoadRules(files...)
	if err != nil {
		return nil, err
	}
	if err := cat.AddRecordingRules(rules); err != nil {
		return nil, err
	}
	if err := cat.CheckAlerts(rules); err != nil {
		return nil, err
	}
	return &Repo{Catalog: cat, Rules: rules, RuleFiles: files, Jobs: jobs}, nil
}

// ScrapeJobs lists the job names of a Prometheus configuration file.
func ScrapeJobs(configFile string) ([]string, error) {
	data, err := os.ReadFile(configFile)
	if err != nil {
		return nil, fmt.Errorf("prometheus config: %w", err)
	}
	var conf struct {
		ScrapeConfigs []struct {
			JobName string `yaml:"job_name"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(data, &conf); err != nil {
		return nil, fmt.Errorf("prometheus config %s: %w", configFile, err)
	}
	var jobs []string
	for _, sc := range conf.ScrapeConfigs {
		jobs = append(jobs, sc.JobName)
	}
	if len(jobs) == 0 {
		return nil, fmt.Errorf("prometheus config %s: no scrape jobs", configFile)
	}
	return jobs, nil
}
