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
}

// UnknownKeys lists the config file's keys that no setting uses.
func (s *Set) UnknownKeys() []string { return s.unknown }

// New creates a set whose flags parse with the given program name.
func New(name string, out io.Writer) *Set {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	return &Set{fs: fs, origin: map[string]string{}}
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
func (s *Set) Parse(args []string, getenv func(string) string, configPath func() (path string, required bool)) error {
	if err := s.fs.Parse(args); err != nil {
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
					return fmt.Errorf("environment %s=%q: %w", name, v, err)
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
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	flat := map[string]any{}
	flatten("", doc, flat)
	known := map[string]bool{}
	for _, st := range s.settings {
		if st.Key == "" {
			continue
		}
		known[st.Key] = true
		for k := range flat {
			if strings.HasPrefix(k, st.Key+".") {
				return fmt.Errorf("config file %s: key %s: want a single value, got a map", path, st.Key)
			}
		}
		v, ok := flat[st.Key]
		if !ok || setByFlag[st.Flag] {
			continue
		}
		str, err := scalar(v)
		if err != nil {
			return fmt.Errorf("config file %s: key %s: %w", path, st.Key, err)
		}
		if err := st.Value.Set(str); err != nil {
			return fmt.Errorf("config file %s: key %s=%q: %w", path, st.Key, str, err)
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

func flatten(prefix string, m map[string]any, out map[string]any) {
	for k, v := range m {
		key := k
		if prefix != "" {
			key = prefix + "." + k
		}
		if sub, ok := v.(map[string]any); ok {
			flatten(key, sub, out)
			continue
		}
		out[key] = v
	}
}

func scalar(v any) (string, error) {
	switch v := v.(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	case int, int64, uint64, float64, bool:
		return fmt.Sprint(v), nil
	}
	return "", fmt.Errorf("want a single value, got %T", v)
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
