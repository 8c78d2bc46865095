package promcheck

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"

	"go.yaml.in/yaml/v3"
)

// Rule is one recording or alerting rule of a Prometheus rule file.
type Rule struct {
	File        string
	Group       string
	Record      string            `yaml:"record"`
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

// Name is the record or alert name.
func (r Rule) Name() string {
	if r.Record != "" {
		return r.Record
	}
	return r.Alert
}

type ruleFile struct {
	Groups []struct {
		Name     string `yaml:"name"`
		Interval string `yaml:"interval"`
		Rules    []Rule `yaml:"rules"`
	} `yaml:"groups"`
}

// LoadRules reads Prometheus rule files, in order.
func LoadRules(paths ...string) ([]Rule, error) {
	var out []Rule
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("read rules: %w", err)
		}
		var f ruleFile
		if err := yaml.Unmarshal(data, &f); err != nil {
			return nil, fmt.Errorf("parse rules %s: %w", p, err)
		}
		for _, g := range f.Groups {
			for _, r := range g.Rules {
				r.File, r.Group = p, g.Name
				if (r.Record == "") == (r.Alert == "") {
					return nil, fmt.Errorf("rules %s group %s: a rule needs exactly one of record and alert (expr %q)", p, g.Name, r.Expr)
				}
				out = append(out, r)
			}
		}
	}
	return out, nil
}

// AddRecordingRules checks every recording rule and adds its series to the catalog, with the
// labels inferred from its expression plus its static labels. Rules may use each other in any
// order; a rule that uses a metric known nowhere is an error.
func (c *Catalog) AddRecordingRules(rules []Rule) error {
	pending := map[string][]Rule{}
	for _, r := range rules {
		if r.Record != "" {
			pending[r.Record] = append(pending[r.Record], r)
		}
	}
	for len(pending) > 0 {
		progress := false
		for _, name := range slices.Sorted(maps.Keys(pending)) {
			if c.dependsOnPending(pending[name], pending) {
				continue
			}
			for _, r := range pending[name] {
				ls, err := c.Check(r.Expr)
				if err != nil {
					return fmt.Errorf("recording rule %s (%s): %w", r.Record, r.File, err)
				}
				if ls.Scalar {
					return fmt.Errorf("recording rule %s (%s): expression is a scalar, not a vector", r.Record, r.File)
				}
				s := Series{Name: r.Record, Labels: cloneLabels(ls.Labels), AnyLabels: ls.Any, Source: r.File}
				for k, v := range r.Labels {
					s.Labels[k] = []string{v}
				}
				c.Add(s)
			}
			delete(pending, name)
			progress = true
		}
		if !progress {
			return fmt.Errorf("recording rules depend on each other in a cycle: %v", slices.Sorted(maps.Keys(pending)))
		}
	}
	return nil
}

// dependsOnPending reports whether any of the rules reads a series that is still pending (other
// than the rule's own name).
func (c *Catalog) dependsOnPending(rules []Rule, pending map[string][]Rule) bool {
	for _, r := range rules {
		e, err := Parse(r.Expr)
		if err != nil {
			return false // Check reports it
		}
		for _, sel := range selectorNames(e) {
			if _, ok := pending[sel]; ok && sel != r.Record {
				return true
			}
		}
	}
	return false
}

// CheckAlerts checks the expressions of the alerting rules.
func (c *Catalog) CheckAlerts(rules []Rule) error {
	var errs []error
	for _, r := range rules {
		if r.Alert == "" {
			continue
		}
		if _, err := c.Check(r.Expr); err != nil {
			errs = append(errs, fmt.Errorf("alert %s (%s): %w", r.Alert, r.File, err))
		}
	}
	return errors.Join(errs...)
}
