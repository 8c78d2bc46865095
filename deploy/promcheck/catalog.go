// Package promcheck checks PromQL expressions against the metrics loteria exports.
//
// A Catalog lists the series Prometheus can hold: the metrics of docs/METRICS.md (histograms
// expanded to _bucket/_sum/_count), the labels the scrape adds (job, instance, target labels),
// `up`, and the series of recording rules, whose labels are inferred from their expressions.
// Check parses an expression with the Prometheus PromQL parser and reports unknown metrics,
// unknown labels in matchers, label values outside a documented set, grouping by labels the
// input does not have, histogram_quantile over series without `le`, and one-to-one matches of
// aggregations whose label sets differ (which always return nothing).
//
// The package imports the Prometheus module: use it from tests and tools only, never from the
// services.
package promcheck

import (
	"bufio"
	"bytes"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
)

// Series is one series name Prometheus can hold and the labels it may carry.
type Series struct {
	Name string
	// Labels maps each label the series may have to its allowed values; a nil or empty list
	// allows any value.
	Labels map[string][]string
	// AnyLabels is true when the series may carry labels not listed (go_* metrics, whose labels
	// the doc does not list, or a recording rule over them).
	AnyLabels bool
	// Exemplars is true for series documented to carry exemplars (a histogram's _bucket series).
	Exemplars bool
	// Source says where the series comes from, for error messages.
	Source string
}

// Catalog is the set of series names known to exist.
type Catalog struct {
	series   map[string]*Series
	prefixes []string            // names like go_* and process_*: any series with the prefix, any label
	common   map[string][]string // labels every series has (AddLabels), checked on prefixes too
}

// NewCatalog returns an empty catalog.
func NewCatalog() *Catalog {
	return &Catalog{series: map[string]*Series{}, common: map[string][]string{}}
}

// Add adds a series, or merges its labels into a series of the same name.
func (c *Catalog) Add(s Series) {
	old, ok := c.series[s.Name]
	if !ok {
		labels := make(map[string][]string, len(s.Labels))
		for k, v := range s.Labels {
			labels[k] = slices.Clone(v)
		}
		c.series[s.Name] = &Series{Name: s.Name, Labels: labels, AnyLabels: s.AnyLabels, Exemplars: s.Exemplars, Source: s.Source}
		return
	}
	old.AnyLabels = old.AnyLabels || s.AnyLabels
	old.Exemplars = old.Exemplars || s.Exemplars
	for k, v := range s.Labels {
		prev, had := old.Labels[k]
		switch {
		case !had:
			old.Labels[k] = slices.Clone(v)
		case len(prev) == 0 || len(v) == 0:
			old.Labels[k] = nil // one of them allows any value
		default:
			old.Labels[k] = union(prev, v)
		}
	}
}

// AddPrefix allows every series whose name starts with prefix, with any labels.
func (c *Catalog) AddPrefix(prefix string) {
	if !slices.Contains(c.prefixes, prefix) {
		c.prefixes = append(c.prefixes, prefix)
	}
}

// AddLabels adds labels (with allowed values, nil for any) to every series in the catalog, e.g.
// the job and instance labels every scrape attaches.
func (c *Catalog) AddLabels(labels map[string][]string) {
	for k, v := range labels {
		c.common[k] = slices.Clone(v)
	}
	for _, s := range c.series {
		for k, v := range labels {
			if _, ok := s.Labels[k]; !ok {
				s.Labels[k] = slices.Clone(v)
			}
		}
	}
}

// Lookup returns the series named name. For a name matched only by a prefix it returns a series
// that allows any label.
func (c *Catalog) Lookup(name string) (Series, bool) {
	if s, ok := c.series[name]; ok {
		return *s, true
	}
	for _, p := range c.prefixes {
		if strings.HasPrefix(name, p) {
			return Series{Name: name, Labels: cloneLabels(c.common), AnyLabels: true, Source: p + "*"}, true
		}
	}
	return Series{}, false
}

// ExemplarSeries reports whether any series expr selects carries exemplars.
func (c *Catalog) ExemplarSeries(expr string) (bool, error) {
	e, err := Parse(expr)
	if err != nil {
		return false, err
	}
	for _, name := range selectorNames(e) {
		if s, ok := c.Lookup(name); ok && s.Exemplars {
			return true, nil
		}
	}
	return false, nil
}

// Names lists the exact series names in the catalog, sorted.
func (c *Catalog) Names() []string {
	return slices.Sorted(maps.Keys(c.series))
}

var (
	backticked   = regexp.MustCompile("`([^`]*)`")
	serviceValue = regexp.MustCompile(`service="([A-Za-z0-9_]+)"`)
	everySeries  = regexp.MustCompile("every series also has `([A-Za-z_][A-Za-z0-9_]*)=")
	metricName   = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*\*?$`)
)

// ParseMetricsDoc reads the metric tables of docs/METRICS.md. Each row is
// | `name` | type | labels | meaning |, where labels is a list of `label` or
// `label` = `value`, `value`... A section heading that says "every series also has `x=`" adds
// label x to the section's metrics; `service="..."` in headings lists the values of the service
// label. Names ending in * become prefixes.
func ParseMetricsDoc(doc []byte) (*Catalog, error) {
	c := NewCatalog()
	var (
		sectionLabels []string
		services      []string
		withService   []string // series with a service label that lists no values
		rows          int
	)
	sc := bufio.NewScanner(bytes.NewReader(doc))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") {
			sectionLabels = nil
			for _, m := range everySeries.FindAllStringSubmatch(line, -1) {
				sectionLabels = append(sectionLabels, m[1])
			}
			for _, m := range serviceValue.FindAllStringSubmatch(line, -1) {
				services = append(services, m[1])
			}
			continue
		}
		if !strings.HasPrefix(line, "| `") {
			continue // not a metric row (header, separator, prose)
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if len(cells) < 3 {
			return nil, fmt.Errorf("metrics doc line %d: want at least 3 cells: %q", n, line)
		}
		names := backticked.FindAllStringSubmatch(cells[0], -1)
		if len(names) == 0 {
			return nil, fmt.Errorf("metrics doc line %d: no metric name in %q", n, cells[0])
		}
		kind := ""
		if f := strings.Fields(strings.ReplaceAll(cells[1], ",", " ")); len(f) > 0 {
			kind = strings.ToLower(f[0])
		}
		exemplars := strings.Contains(strings.ToLower(cells[1]), "exemplar")
		labels, err := parseLabelCell(cells[2])
		if err != nil {
			return nil, fmt.Errorf("metrics doc line %d: %w", n, err)
		}
		for _, l := range sectionLabels {
			if _, ok := labels[l]; !ok {
				labels[l] = nil
			}
		}
		for _, m := range names {
			name := m[1]
			if !metricName.MatchString(name) {
				return nil, fmt.Errorf("metrics doc line %d: bad metric name %q", n, name)
			}
			rows++
			if strings.HasSuffix(name, "*") {
				c.AddPrefix(strings.TrimSuffix(name, "*"))
				continue
			}
			src := fmt.Sprintf("METRICS.md:%d", n)
			if v, ok := labels["service"]; ok && len(v) == 0 {
				withService = append(withService, name)
			}
			switch kind {
			case "histogram":
				bucket := maps.Clone(labels)
				bucket["le"] = nil
				c.Add(Series{Name: name + "_bucket", Labels: bucket, Exemplars: exemplars, Source: src})
				c.Add(Series{Name: name + "_sum", Labels: maps.Clone(labels), Source: src})
				c.Add(Series{Name: name + "_count", Labels: maps.Clone(labels), Source: src})
			case "counter", "gauge":
				c.Add(Series{Name: name, Labels: maps.Clone(labels), Source: src})
			default:
				return nil, fmt.Errorf("metrics doc line %d: %s: unknown metric type %q", n, name, kind)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read metrics doc: %w", err)
	}
	if rows == 0 {
		return nil, fmt.Errorf("metrics doc: no metric rows found")
	}
	for _, name := range withService {
		c.series[name].Labels["service"] = slices.Clone(services)
	}
	return c, nil
}

// parseLabelCell reads "`a`, `b`" or "`result` = `x`, `y`" (possibly several label = values
// groups separated by ";").
func parseLabelCell(cell string) (map[string][]string, error) {
	out := map[string][]string{}
	for _, part := range strings.Split(cell, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if name, values, ok := strings.Cut(part, "="); ok {
			n := backticked.FindStringSubmatch(name)
			if n == nil {
				return nil, fmt.Errorf("label cell %q: no label name before =", cell)
			}
			var vs []string
			for _, v := range backticked.FindAllStringSubmatch(values, -1) {
				vs = append(vs, v[1])
			}
			out[n[1]] = vs
			continue
		}
		for _, n := range backticked.FindAllStringSubmatch(part, -1) {
			out[n[1]] = nil
		}
	}
	return out, nil
}

func union(a, b []string) []string {
	out := slices.Clone(a)
	for _, v := range b {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	slices.Sort(out)
	return out
}
