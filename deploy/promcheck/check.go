package promcheck

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// Parse parses a PromQL expression with the Prometheus parser.
func Parse(expr string) (parser.Expr, error) {
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		return nil, fmt.Errorf("parse %q: %w", expr, err)
	}
	return e, nil
}

// LabelSet is what is known of the labels of an expression's result.
type LabelSet struct {
	// Labels maps each label the result may carry to its possible values (nil: any value).
	Labels map[string][]string
	// Any is true when the result may carry labels not listed (a prefix-matched metric).
	Any bool
	// Exact is true when the result carries exactly Labels (the output of an aggregation), so
	// two exact sets that differ can never match one to one.
	Exact bool
	// Scalar is true for a scalar or string result.
	Scalar bool
}

// Names lists the label names, sorted.
func (s LabelSet) Names() []string { return slices.Sorted(maps.Keys(s.Labels)) }

func (s LabelSet) has(name string) bool {
	_, ok := s.Labels[name]
	return s.Any || ok
}

// Check parses expr and checks it against the catalog. It returns what is known of the result's
// labels and every problem found, joined.
func (c *Catalog) Check(expr string) (LabelSet, error) {
	e, err := Parse(expr)
	if err != nil {
		return LabelSet{}, err
	}
	ck := checker{cat: c}
	out := ck.infer(e)
	if len(ck.errs) > 0 {
		return out, fmt.Errorf("%s: %w", expr, errors.Join(ck.errs...))
	}
	return out, nil
}

type checker struct {
	cat  *Catalog
	errs []error
}

func (ck *checker) errorf(format string, args ...any) {
	ck.errs = append(ck.errs, fmt.Errorf(format, args...))
}

func (ck *checker) infer(node parser.Expr) LabelSet {
	switch n := node.(type) {
	case *parser.NumberLiteral, *parser.StringLiteral:
		return LabelSet{Scalar: true, Exact: true}
	case *parser.ParenExpr:
		return ck.infer(n.Expr)
	case *parser.StepInvariantExpr:
		return ck.infer(n.Expr)
	case *parser.UnaryExpr:
		return ck.infer(n.Expr)
	case *parser.MatrixSelector:
		return ck.infer(n.VectorSelector)
	case *parser.SubqueryExpr:
		return ck.infer(n.Expr)
	case *parser.VectorSelector:
		return ck.selector(n)
	case *parser.AggregateExpr:
		return ck.aggregate(n)
	case *parser.Call:
		return ck.call(n)
	case *parser.BinaryExpr:
		return ck.binary(n)
	default:
		ck.errorf("unsupported expression %T: %s", node, node)
		return LabelSet{Any: true}
	}
}

func (ck *checker) selector(vs *parser.VectorSelector) LabelSet {
	name := vs.Name
	if name == "" {
		for _, m := range vs.LabelMatchers {
			if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
				name = m.Value
			}
		}
	}
	if name == "" {
		ck.errorf("selector %s names no metric", vs)
		return LabelSet{Any: true}
	}
	s, ok := ck.cat.Lookup(name)
	if !ok {
		ck.errorf("unknown metric %q (not in docs/METRICS.md, not go_*/process_*, not a recording rule)", name)
		return LabelSet{Any: true}
	}
	for _, m := range vs.LabelMatchers {
		if m.Name == labels.MetricName {
			continue
		}
		allowed, ok := s.Labels[m.Name]
		if !ok && s.AnyLabels {
			continue
		}
		if !ok {
			ck.errorf("%s has no label %q (labels: %s; from %s)", name, m.Name, strings.Join(slices.Sorted(maps.Keys(s.Labels)), ", "), s.Source)
			continue
		}
		if len(allowed) == 0 {
			continue
		}
		switch m.Type {
		case labels.MatchEqual, labels.MatchNotEqual:
			if !slices.Contains(allowed, m.Value) {
				ck.errorf("%s{%s}: %q is not a value of %s (values: %s)", name, m, m.Value, m.Name, strings.Join(allowed, ", "))
			}
		case labels.MatchRegexp, labels.MatchNotRegexp:
			// A plain alternation of literals is checked value by value.
			if strings.ContainsAny(m.Value, `.*+?()[]{}^$\`) {
				continue
			}
			for _, v := range strings.Split(m.Value, "|") {
				if !slices.Contains(allowed, v) {
					ck.errorf("%s{%s}: %q is not a value of %s (values: %s)", name, m, v, m.Name, strings.Join(allowed, ", "))
				}
			}
		}
	}
	return LabelSet{Labels: cloneLabels(s.Labels), Any: s.AnyLabels}
}

// selectorNames lists the metric names an expression selects.
func selectorNames(e parser.Expr) []string {
	var names []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			name := vs.Name
			for _, m := range vs.LabelMatchers {
				if name == "" && m.Name == labels.MetricName && m.Type == labels.MatchEqual {
					name = m.Value
				}
			}
			if name != "" {
				names = append(names, name)
			}
		}
		return nil
	})
	return names
}

func (ck *checker) aggregate(a *parser.AggregateExpr) LabelSet {
	in := ck.infer(a.Expr)
	var param LabelSet
	if a.Param != nil {
		param = ck.infer(a.Param)
	}
	if !a.Without {
		for _, g := range a.Grouping {
			if !in.has(g) {
				ck.errorf("%s by (%s): the input has no label %q (it has: %s)", a.Op, strings.Join(a.Grouping, ", "), g, strings.Join(in.Names(), ", "))
			}
		}
	}
	switch a.Op {
	case parser.TOPK, parser.BOTTOMK, parser.LIMITK, parser.LIMIT_RATIO:
		return LabelSet{Labels: cloneLabels(in.Labels), Any: in.Any}
	}
	out := LabelSet{Labels: map[string][]string{}, Exact: true}
	if a.Without {
		out.Any = in.Any
		out.Exact = !in.Any && in.Exact
		for k, v := range in.Labels {
			if !slices.Contains(a.Grouping, k) {
				out.Labels[k] = slices.Clone(v)
			}
		}
	} else {
		for _, g := range a.Grouping {
			out.Labels[g] = slices.Clone(in.Labels[g])
		}
	}
	if a.Op == parser.COUNT_VALUES {
		if sl, ok := a.Param.(*parser.StringLiteral); ok {
			out.Labels[sl.Val] = nil
		}
		_ = param
	}
	return out
}

func (ck *checker) call(c *parser.Call) LabelSet {
	args := make([]LabelSet, len(c.Args))
	for i, a := range c.Args {
		args[i] = ck.infer(a)
	}
	firstVector := func() (LabelSet, bool) {
		for i, a := range c.Args {
			if t := a.Type(); t == parser.ValueTypeVector || t == parser.ValueTypeMatrix {
				return args[i], true
			}
		}
		return LabelSet{}, false
	}
	switch c.Func.Name {
	case "histogram_quantile", "histogram_fraction":
		in := args[len(args)-1]
		if !in.has("le") {
			ck.errorf("%s over series without an le label (classic histograms need the _bucket series, grouped by le)", c.Func.Name)
		}
		out := LabelSet{Labels: cloneLabels(in.Labels), Any: in.Any, Exact: in.Exact}
		delete(out.Labels, "le")
		return out
	case "label_replace", "label_join":
		in := args[0]
		out := LabelSet{Labels: cloneLabels(in.Labels), Any: in.Any}
		if sl, ok := c.Args[1].(*parser.StringLiteral); ok {
			out.Labels[sl.Val] = nil
		}
		return out
	case "absent", "absent_over_time":
		return LabelSet{Labels: map[string][]string{}, Any: true}
	case "vector":
		return LabelSet{Labels: map[string][]string{}, Exact: true}
	}
	switch c.Func.ReturnType {
	case parser.ValueTypeScalar, parser.ValueTypeString:
		return LabelSet{Scalar: true, Exact: true}
	}
	if v, ok := firstVector(); ok {
		return LabelSet{Labels: cloneLabels(v.Labels), Any: v.Any, Exact: v.Exact}
	}
	return LabelSet{Labels: map[string][]string{}, Exact: true} // time()-like functions returning a vector
}

func (ck *checker) binary(b *parser.BinaryExpr) LabelSet {
	l, r := ck.infer(b.LHS), ck.infer(b.RHS)
	switch {
	case l.Scalar && r.Scalar:
		return LabelSet{Scalar: true, Exact: true}
	case l.Scalar:
		return r
	case r.Scalar:
		return l
	}
	vm := b.VectorMatching
	if vm == nil {
		vm = &parser.VectorMatching{Card: parser.CardOneToOne}
	}
	if vm.On {
		for _, m := range vm.MatchingLabels {
			if !l.has(m) {
				ck.errorf("%s on (%s): the left side has no label %q", b.Op, strings.Join(vm.MatchingLabels, ", "), m)
			}
			if !r.has(m) {
				ck.errorf("%s on (%s): the right side has no label %q", b.Op, strings.Join(vm.MatchingLabels, ", "), m)
			}
		}
	}
	if b.Op.IsSetOperator() {
		if b.Op == parser.LOR {
			out := LabelSet{Labels: cloneLabels(l.Labels), Any: l.Any || r.Any}
			for k, v := range r.Labels {
				if _, ok := out.Labels[k]; !ok {
					out.Labels[k] = slices.Clone(v)
				}
			}
			return out
		}
		return l // and, unless: samples of the left side
	}
	switch vm.Card {
	case parser.CardManyToOne, parser.CardOneToMany:
		many, one := l, r
		if vm.Card == parser.CardOneToMany {
			many, one = r, l
		}
		out := LabelSet{Labels: cloneLabels(many.Labels), Any: many.Any}
		for _, inc := range vm.Include {
			if !one.has(inc) {
				ck.errorf("group_left/group_right (%s): the 'one' side has no label %q", strings.Join(vm.Include, ", "), inc)
			}
			out.Labels[inc] = slices.Clone(one.Labels[inc])
		}
		return out
	}
	// One to one: the result keeps the matching labels (on) or the left side's labels minus the
	// ignored ones.
	if vm.On {
		out := LabelSet{Labels: map[string][]string{}, Exact: true}
		for _, m := range vm.MatchingLabels {
			out.Labels[m] = slices.Clone(l.Labels[m])
		}
		return out
	}
	lk, rk := without(l, vm.MatchingLabels), without(r, vm.MatchingLabels)
	if l.Exact && r.Exact && !l.Any && !r.Any && !slices.Equal(lk, rk) {
		ck.errorf("%s matches one to one but the sides have different labels (%s) and (%s): the result is always empty; use on(...) or ignoring(...)", b.Op, strings.Join(lk, ", "), strings.Join(rk, ", "))
	}
	out := LabelSet{Labels: map[string][]string{}, Any: l.Any, Exact: l.Exact}
	for _, k := range lk {
		out.Labels[k] = slices.Clone(l.Labels[k])
	}
	return out
}

func without(s LabelSet, drop []string) []string {
	var out []string
	for _, k := range s.Names() {
		if !slices.Contains(drop, k) {
			out = append(out, k)
		}
	}
	return out
}

func cloneLabels(m map[string][]string) map[string][]string {
	out := make(map[string][]string, len(m))
	for k, v := range m {
		out[k] = slices.Clone(v)
	}
	return out
}
