// Package settings binds a program's configuration to flags, environment
// variables and a YAML file, with the precedence flag > environment > file >
// default. Every setting goes through its flag.Value's Set, so a value is
// parsed and checked the same way wherever it comes from.
package settings

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/loteria/loteria/internal/usage"
)

// Setting is one configurable value.
type Setting struct {
	Flag  string   // flag name, without dashes
	Env   []string // environment variables, first match wins
	Key   string   // dotted YAML path, e.g. "server.port"
	Usage string
	Value flag.Value
	// Secret settings are not printed by Effective.
	Secret bool
}

// Set is a program's settings, bound to a FlagSet.
type Set struct {
	fs       *flag.FlagSet
	settings []*Setting
	origin   map[string]string
	unknown  []string
	program  usage.Program
}

// Subcommand is a word that, given first, makes the program do something
// else; Describe lists it in -h.
type Subcommand = usage.Subcommand

// Describe says in one line what the program is and lists its
// subcommands, for -h:
//
//	s := settings.New("central", stderr)
//	s.Describe("the Lotería Nacional server: ...",
//		settings.Subcommand{Name: "healthcheck", Args: "[--url URL]", Summary: "probe a running central"})
//
// -h then prints that line, the synopsis with each subcommand, every flag
// with its environment variable, YAML key and default, and the precedence;
// Parse returns flag.ErrHelp, which the program turns into exit status 0.
func (s *Set) Describe(summary string, subcommands ...Subcommand) {
	s.program.Summary = summary
	s.program.Subcommands = subcommands
}

// Help writes the program's -h to w.
func (s *Set) Help(w io.Writer) { usage.Write(w, s.program, s.fs) }

// UnknownKeys lists the config file's keys that no setting uses.
func (s *Set) UnknownKeys() []string { return s.unknown }

// New creates a set whose flags parse with the given program name.
func New(name string, out io.Writer) *Set {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	s := &Set{fs: fs, origin: map[string]string{}}
	s.program = usage.Program{Name: name, Notes: []string{
		"A flag beats its environment variable, which beats the YAML file, which beats the default.\n" +
			"Every setting is described in docs/CONFIGURATION.md.",
	}}
	usage.Install(fs, s.program)
	return s
}

// FlagSet is the underlying flag set, for flags that are not settings
// (such as --config).
func (s *Set) FlagSet() *flag.FlagSet { return s.fs }

// Add registers a setting; its Value holds the default.
func (s *Set) Add(st Setting) {
	usage := st.Usage
	if len(st.Env) > 0 || st.Key != "" {
		var where []string
		if len(st.Env) > 0 {
			where = append(where, "env "+strings.Join(st.Env, ", "))
		}
		if st.Key != "" {
			where = append(where, "YAML "+st.Key)
		}
		usage += " (" + strings.Join(where, "; ") + ")"
	}
	s.fs.Var(st.Value, st.Flag, usage)
	s.settings = append(s.settings, &st)
}

// String adds a string setting.
func (s *Set) String(p *string, flagName, key, usage string, env ...string) {
	s.Add(Setting{Flag: flagName, Env: env, Key: key, Usage: usage, Value: (*stringValue)(p)})
}

// Int adds an int setting.
func (s *Set) Int(p *int, flagName, key, usage string, env ...string) {
	s.Add(Setting{Flag: flagName, Env: env, Key: key, Usage: usage, Value: (*intValue)(p)})
}

// Bool adds a bool setting.
func (s *Set) Bool(p *bool, flagName, key, usage string, env ...string) {
	s.Add(Setting{Flag: flagName, Env: env, Key: key, Usage: usage, Value: (*boolValue)(p)})
}

// Duration adds a duration setting ("10s", "1m").
func (s *Set) Duration(p *time.Duration, flagName, key, usage string, env ...string) {
	s.Add(Setting{Flag: flagName, Env: env, Key: key, Usage: usage, Value: (*durationValue)(p)})
}

// Parse applies, in order, the YAML file (when configPath names one; a
// missing file is an error only when required), the environment and the
// command line. The file path itself may come from the command line, so
// args are parsed first to find it, then applied last.
//
// -h or --help writes the program's help (see Describe) to the set's
// output and returns flag.ErrHelp; a bad flag prints nothing and returns an
// error that names it and says how to see the help.
func (s *Set) Parse(args []string, getenv func(string) string, configPath func() (path string, required bool)) error {
	usage.Install(s.fs, s.program)
	if err := usage.Parse(s.fs, s.program, args); err != nil {
		return err
	}
	setByFlag := map[string]bool{}
	s.fs.Visit(func(f *flag.Flag) { setByFlag[f.Name] = true })

	if configPath != nil {
		if path, required := configPath(); path != "" {
			if err := s.applyFile(path, required, setByFlag); err != nil {
				return err
			}
		}
	}
	for _, st := range s.settings {
		if setByFlag[st.Flag] {
			s.origin[st.Flag] = "flag"
			continue
		}
		for _, name := range st.Env {
			if v := getenv(name); v != "" {
				if err := st.Value.Set(v); err != nil {
					if st.Secret {
						return fmt.Errorf("environment %s (a secret, not shown; sets --%s): invalid value", name, st.Flag)
					}
					return fmt.Errorf("environment %s=%q (sets --%s): %w", name, v, st.Flag, err)
				}
				s.origin[st.Flag] = "env " + name
				break
			}
		}
	}
	return nil
}

func (s *Set) applyFile(path string, required bool, setByFlag map[string]bool) error {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) && !required {
			return nil
		}
		return fmt.Errorf("read config file: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("config file %s is not valid YAML: %w", path, err)
	}
	flat := map[string]*yaml.Node{}
	if len(doc.Content) > 0 {
		if err := flatten("", doc.Content[0], flat); err != nil {
			return fmt.Errorf("config file %s: %w", path, err)
		}
	}
	known := map[string]bool{}
	for _, st := range s.settings {
		if st.Key == "" {
			continue
		}
		known[st.Key] = true
		for k, n := range flat {
			if strings.HasPrefix(k, st.Key+".") {
				return fmt.Errorf("config file %s, line %d: key %s holds a map (with key %s); want %s",
					path, n.Line, st.Key, strings.TrimPrefix(k, st.Key+"."), want(st))
			}
		}
		n, ok := flat[st.Key]
		if !ok || setByFlag[st.Flag] {
			continue
		}
		str, err := scalar(n)
		if err != nil {
			return fmt.Errorf("config file %s, line %d: key %s %v; want %s", path, n.Line, st.Key, err, want(st))
		}
		if err := st.Value.Set(str); err != nil {
			if st.Secret {
				return fmt.Errorf("config file %s, line %d: key %s (a secret, not shown; sets --%s): invalid value", path, n.Line, st.Key, st.Flag)
			}
			return fmt.Errorf("config file %s, line %d: key %s=%q (sets --%s): %w", path, n.Line, st.Key, str, st.Flag, err)
		}
		s.origin[st.Flag] = "file"
	}
	// Keys we do not know are kept for the program to warn about, not
	// refused: the seed's config.yaml carries keys (loop.*) we do not use.
	for k := range flat {
		if !known[k] {
			s.unknown = append(s.unknown, k)
		}
	}
	sort.Strings(s.unknown)
	return nil
}

// flatten records every leaf of the mapping n under its dotted key. A leaf
// is any node that is not a mapping: a scalar, or a list the caller will
// refuse if a setting uses its key. Aliases are followed and merge keys
// (<<) applied, as a YAML decoder would; a key given twice is an error.
func flatten(prefix string, n *yaml.Node, out map[string]*yaml.Node) error {
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		if prefix == "" {
			return fmt.Errorf("line %d: the file holds %s; want keys and values such as \"server:\" with \"port: 12345\" under it", n.Line, kindName(n))
		}
		out[prefix] = n
		return nil
	}
	seen := map[string]int{}
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Tag == "!!merge" || (k.Kind == yaml.ScalarNode && k.Value == "<<" && k.Style == 0) {
			merges = append(merges, v)
			continue
		}
		if first, dup := seen[k.Value]; dup {
			return fmt.Errorf("line %d: key %s is given twice (first on line %d)", k.Line, join(prefix, k.Value), first)
		}
		seen[k.Value] = k.Line
		if err := flatten(join(prefix, k.Value), v, out); err != nil {
			return err
		}
	}
	// Merged keys never override the mapping's own.
	for _, m := range merges {
		m = resolve(m)
		srcs := []*yaml.Node{m}
		if m.Kind == yaml.SequenceNode {
			srcs = m.Content
		}
		for _, src := range srcs {
			sub := map[string]*yaml.Node{}
			if err := flatten(prefix, src, sub); err != nil {
				return err
			}
			for k, v := range sub {
				child, _, _ := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(k, prefix), "."), ".")
				if _, own := seen[child]; own {
					continue
				}
				if _, ok := out[k]; !ok {
					out[k] = v
				}
			}
		}
	}
	return nil
}

func join(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		return resolve(n.Content[0])
	}
	return n
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		if len(n.Content) == 1 {
			return "a list of 1 item"
		}
		return fmt.Sprintf("a list of %d items", len(n.Content))
	case yaml.MappingNode:
		return "a map"
	case yaml.ScalarNode:
		return "a single value"
	}
	return "something else"
}

// scalar is a leaf's text as a setting's Set takes it, with YAML's own
// reading of numbers and booleans (0x10 is 16, 1e3 is 1000).
func scalar(n *yaml.Node) (string, error) {
	if n.Kind != yaml.ScalarNode {
		return "", fmt.Errorf("holds %s", kindName(n))
	}
	var v any
	if err := n.Decode(&v); err != nil {
		return "", fmt.Errorf("holds a value YAML cannot read (%v)", err)
	}
	switch v := v.(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	case int, int64, uint64, float64, bool:
		return fmt.Sprint(v), nil
	}
	return "", fmt.Errorf("holds a %s value", strings.TrimPrefix(n.Tag, "!!"))
}

// want says what a setting takes, for an error about its YAML key, with
// its default as an example (never a secret's).
func want(st *Setting) string {
	what, example := "a value", st.Value.String()
	switch st.Value.(type) {
	case *intValue:
		what = "an integer"
	case *boolValue:
		what, example = "true or false", ""
	case *durationValue:
		what = "a duration"
		if example == "0s" {
			example = "10s"
		}
	case *stringValue:
		what = "a string"
		if example != "" {
			example = strconv.Quote(example)
		}
	}
	s := "a single value, " + what
	if example != "" && !st.Secret {
		s += " such as " + example
	}
	return s + " (--" + st.Flag + ")"
}

// Effective lists every setting as flag, value pairs, for a program to log
// once at start (Origin says where a value came from).
func (s *Set) Effective() []any {
	var kv []any
	for _, st := range s.settings {
		v := st.Value.String()
		if st.Secret {
			v = "<redacted>"
		}
		kv = append(kv, st.Flag, v)
	}
	return kv
}

// Origin says where a setting's value came from: "flag", "env NAME",
// "file" or "" for the default.
func (s *Set) Origin(flagName string) string { return s.origin[flagName] }

type stringValue string

func (v *stringValue) Set(s string) error { *v = stringValue(s); return nil }
func (v *stringValue) String() string     { return string(*v) }
func (v *stringValue) Kind() string       { return "string" }

type intValue int

func (v *intValue) Set(s string) error {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return fmt.Errorf("%q is not an integer", s)
	}
	*v = intValue(n)
	return nil
}
func (v *intValue) String() string { return fmt.Sprint(int(*v)) }
func (v *intValue) Kind() string   { return "int" }

type boolValue bool

func (v *boolValue) Set(s string) error {
	switch strings.ToLower(s) {
	case "1", "t", "true", "yes", "on":
		*v = true
	case "0", "f", "false", "no", "off", "":
		*v = false
	default:
		return fmt.Errorf("%q is not a boolean", s)
	}
	return nil
}
func (v *boolValue) String() string   { return fmt.Sprint(bool(*v)) }
func (v *boolValue) IsBoolFlag() bool { return true }

type durationValue time.Duration

func (v *durationValue) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration such as 10s or 1m", s)
	}
	*v = durationValue(d)
	return nil
}
func (v *durationValue) String() string { return time.Duration(*v).String() }
func (v *durationValue) Kind() string   { return "duration" }
