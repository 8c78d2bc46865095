package settings_test

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/loteria/loteria/services/internal/settings"
)

// vals are the settings of a small test program.
type vals struct {
	Name    string        // --name, APP_NAME, app.name
	Port    int           // --port, PORT_PRIMARY then PORT_FALLBACK, server.port
	Debug   bool          // --debug, DEBUG, log.debug
	Timeout time.Duration // --timeout, TIMEOUT, server.timeout
	Max     int           // --batch-max, BATCH_MAX, batch.maxAmount
	Version string        // --version, APP_VERSION, version (top level)
}

func defaults() vals {
	return vals{Name: "def", Port: 1000, Debug: false, Timeout: 5 * time.Second, Max: 100, Version: "v0"}
}

var allFlags = []string{"name", "port", "debug", "timeout", "batch-max", "version"}

// program builds the test program's settings, bound to v.
func program(v *vals) *settings.Set {
	*v = defaults()
	s := settings.New("test", io.Discard)
	s.String(&v.Name, "name", "app.name", "a name", "APP_NAME")
	s.Int(&v.Port, "port", "server.port", "a port", "PORT_PRIMARY", "PORT_FALLBACK")
	s.Bool(&v.Debug, "debug", "log.debug", "debug logs", "DEBUG")
	s.Duration(&v.Timeout, "timeout", "server.timeout", "a timeout", "TIMEOUT")
	s.Int(&v.Max, "batch-max", "batch.maxAmount", "bets per batch", "BATCH_MAX")
	s.String(&v.Version, "version", "version", "a version", "APP_VERSION")
	return s
}

// mapEnv is a getenv backed by a map.
func mapEnv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// writeFile writes content to name in a new temporary directory and
// returns its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// run parses args and env with the test program; yaml, when not empty, is
// written to a required config file.
func run(t *testing.T, args []string, env map[string]string, yaml string) (vals, *settings.Set, error) {
	t.Helper()
	var v vals
	s := program(&v)
	var cfg func() (string, bool)
	if yaml != "" {
		p := writeFile(t, "config.yaml", yaml)
		cfg = func() (string, bool) { return p, true }
	}
	err := s.Parse(args, mapEnv(env), cfg)
	return v, s, err
}

const fullYAML = `
app:
  name: fromfile
server:
  port: 2000
  timeout: 20s
log:
  debug: true
batch:
  maxAmount: 20
version: v2
`

var fullEnv = map[string]string{
	"APP_NAME":     "fromenv",
	"PORT_PRIMARY": "3000",
	"DEBUG":        "false",
	"TIMEOUT":      "30s",
	"BATCH_MAX":    "30",
	"APP_VERSION":  "v3",
}

var fullArgs = []string{"--name", "fromflag", "--port=4000", "--debug", "--timeout", "40s", "--batch-max=40", "--version=v4"}

func TestPrecedence(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		yaml    string
		want    vals
		origins map[string]string // flag name -> Origin; missing means ""
	}{
		{
			name: "defaults only",
			want: defaults(),
		},
		{
			name: "file over defaults",
			yaml: fullYAML,
			want: vals{Name: "fromfile", Port: 2000, Debug: true, Timeout: 20 * time.Second, Max: 20, Version: "v2"},
			origins: map[string]string{
				"name": "file", "port": "file", "debug": "file", "timeout": "file", "batch-max": "file", "version": "file",
			},
		},
		{
			name: "env over file",
			env:  fullEnv,
			yaml: fullYAML,
			want: vals{Name: "fromenv", Port: 3000, Debug: false, Timeout: 30 * time.Second, Max: 30, Version: "v3"},
			origins: map[string]string{
				"name": "env APP_NAME", "port": "env PORT_PRIMARY", "debug": "env DEBUG",
				"timeout": "env TIMEOUT", "batch-max": "env BATCH_MAX", "version": "env APP_VERSION",
			},
		},
		{
			name: "env over defaults without a file",
			env:  fullEnv,
			want: vals{Name: "fromenv", Port: 3000, Debug: false, Timeout: 30 * time.Second, Max: 30, Version: "v3"},
			origins: map[string]string{
				"name": "env APP_NAME", "port": "env PORT_PRIMARY", "debug": "env DEBUG",
				"timeout": "env TIMEOUT", "batch-max": "env BATCH_MAX", "version": "env APP_VERSION",
			},
		},
		{
			name: "flag over env and file",
			args: fullArgs,
			env:  fullEnv,
			yaml: fullYAML,
			want: vals{Name: "fromflag", Port: 4000, Debug: true, Timeout: 40 * time.Second, Max: 40, Version: "v4"},
			origins: map[string]string{
				"name": "flag", "port": "flag", "debug": "flag", "timeout": "flag", "batch-max": "flag", "version": "flag",
			},
		},
		{
			name: "each setting from a different source",
			args: []string{"--name=fromflag"},
			env:  map[string]string{"PORT_PRIMARY": "3000"},
			yaml: "log:\n  debug: true\n",
			want: vals{Name: "fromflag", Port: 3000, Debug: true, Timeout: 5 * time.Second, Max: 100, Version: "v0"},
			origins: map[string]string{
				"name": "flag", "port": "env PORT_PRIMARY", "debug": "file",
			},
		},
		{
			name: "a flag equal to the default still beats env and file",
			args: []string{"--port=1000"},
			env:  map[string]string{"PORT_PRIMARY": "3000"},
			yaml: "server:\n  port: 2000\n",
			want: defaults(),
			origins: map[string]string{
				"port": "flag",
			},
		},
		{
			name: "bool flag false beats env and file true",
			args: []string{"--debug=false"},
			env:  map[string]string{"DEBUG": "true"},
			yaml: "log:\n  debug: true\n",
			want: defaults(),
			origins: map[string]string{
				"debug": "flag",
			},
		},
		{
			name: "env false beats file true",
			env:  map[string]string{"DEBUG": "0"},
			yaml: "log:\n  debug: true\n",
			want: defaults(),
			origins: map[string]string{
				"debug": "env DEBUG",
			},
		},
		{
			name: "empty env value counts as unset",
			env:  map[string]string{"APP_NAME": "", "TIMEOUT": ""},
			yaml: "app:\n  name: fromfile\n",
			want: vals{Name: "fromfile", Port: 1000, Timeout: 5 * time.Second, Max: 100, Version: "v0"},
			origins: map[string]string{
				"name": "file",
			},
		},
		{
			name: "flag with single dash",
			args: []string{"-timeout", "1m"},
			env:  map[string]string{"TIMEOUT": "2m"},
			want: vals{Name: "def", Port: 1000, Timeout: time.Minute, Max: 100, Version: "v0"},
			origins: map[string]string{
				"timeout": "flag",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, s, err := run(t, tt.args, tt.env, tt.yaml)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got != tt.want {
				t.Errorf("values:\n got %+v\nwant %+v", got, tt.want)
			}
			for _, f := range allFlags {
				if o := s.Origin(f); o != tt.origins[f] {
					t.Errorf("Origin(%q) = %q, want %q", f, o, tt.origins[f])
				}
			}
		})
	}
}

func TestSeveralEnvNames(t *testing.T) {
	tests := []struct {
		name       string
		env        map[string]string
		yaml       string
		wantPort   int
		wantOrigin string
	}{
		{"only the first", map[string]string{"PORT_PRIMARY": "3001"}, "", 3001, "env PORT_PRIMARY"},
		{"only the second", map[string]string{"PORT_FALLBACK": "3002"}, "", 3002, "env PORT_FALLBACK"},
		{"both: the first wins", map[string]string{"PORT_PRIMARY": "3001", "PORT_FALLBACK": "3002"}, "", 3001, "env PORT_PRIMARY"},
		{"first empty: the second wins", map[string]string{"PORT_PRIMARY": "", "PORT_FALLBACK": "3002"}, "", 3002, "env PORT_FALLBACK"},
		{"second beats the file", map[string]string{"PORT_FALLBACK": "3002"}, "server:\n  port: 2000\n", 3002, "env PORT_FALLBACK"},
		{"neither: the file", map[string]string{"PORT_PRIMARY": "", "PORT_FALLBACK": ""}, "server:\n  port: 2000\n", 2000, "file"},
		{"neither and no file: the default", nil, "", 1000, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, s, err := run(t, nil, tt.env, tt.yaml)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got.Port != tt.wantPort {
				t.Errorf("port = %d, want %d", got.Port, tt.wantPort)
			}
			if o := s.Origin("port"); o != tt.wantOrigin {
				t.Errorf("Origin(port) = %q, want %q", o, tt.wantOrigin)
			}
		})
	}
}

func TestYAMLKeysAndScalarTypes(t *testing.T) {
	tests := []struct {
		name  string
		yaml  string
		check func(v vals) (got, want any)
	}{
		{"nested int", "server:\n  port: 8080\n", func(v vals) (any, any) { return v.Port, 8080 }},
		{"nested camelCase key", "batch:\n  maxAmount: 7\n", func(v vals) (any, any) { return v.Max, 7 }},
		{"flow mapping", "batch: {maxAmount: 9}\n", func(v vals) (any, any) { return v.Max, 9 }},
		{"quoted number into an int", "server:\n  port: \"8081\"\n", func(v vals) (any, any) { return v.Port, 8081 }},
		{"bool true", "log:\n  debug: true\n", func(v vals) (any, any) { return v.Debug, true }},
		{"bool as quoted string", "log:\n  debug: \"true\"\n", func(v vals) (any, any) { return v.Debug, true }},
		{"duration string", "server:\n  timeout: 1m30s\n", func(v vals) (any, any) { return v.Timeout, 90 * time.Second }},
		{"string", "app:\n  name: lotería\n", func(v vals) (any, any) { return v.Name, "lotería" }},
		{"quoted string", "app:\n  name: \"a: b\"\n", func(v vals) (any, any) { return v.Name, "a: b" }},
		{"int into a string", "app:\n  name: 42\n", func(v vals) (any, any) { return v.Name, "42" }},
		{"bool into a string", "app:\n  name: false\n", func(v vals) (any, any) { return v.Name, "false" }},
		{"float into a string", "version: 2.5\n", func(v vals) (any, any) { return v.Version, "2.5" }},
		{"top-level key", "version: v9\n", func(v vals) (any, any) { return v.Version, "v9" }},
		{"sibling keys in one mapping", "server:\n  port: 8082\n  timeout: 2s\n", func(v vals) (any, any) {
			return [2]any{v.Port, v.Timeout}, [2]any{8082, 2 * time.Second}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, _, err := run(t, nil, nil, tt.yaml)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got, want := tt.check(v); got != want {
				t.Errorf("got %v (%T), want %v (%T)", got, got, want, want)
			}
		})
	}
}

func TestUnknownKeys(t *testing.T) {
	tests := []struct {
		name string
		yaml string // "" means no file at all
		want []string
	}{
		{"no file", "", nil},
		{"only known keys", fullYAML, nil},
		{
			name: "the seed's loop keys and others",
			yaml: "server:\n  port: 2000\n  extra: 1\nloop:\n  amount: 5\n  period: 5s\ntop: x\n",
			want: []string{"loop.amount", "loop.period", "server.extra", "top"},
		},
		{"a list under an unknown key", "hosts:\n  - a\n  - b\n", []string{"hosts"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, s, err := run(t, nil, nil, tt.yaml)
			if err != nil {
				t.Fatalf("unknown keys must not be an error: %v", err)
			}
			got := slices.Clone(s.UnknownKeys())
			slices.Sort(got)
			if !slices.Equal(got, tt.want) {
				t.Errorf("UnknownKeys = %q, want %q", got, tt.want)
			}
			if tt.name == "the seed's loop keys and others" && v.Port != 2000 {
				t.Errorf("known key beside unknown ones: port = %d, want 2000", v.Port)
			}
		})
	}
}

func TestNonScalarWhereScalarExpected(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // the error names the key, the line, what it found and what it wants
	}{
		{"map under an int key", "server:\n  port:\n    value: 1\n",
			[]string{"line 3", "key server.port", "holds a map", "want a single value, an integer such as 1000 (--port)"}},
		{"flow map under an int key", "server: {port: {a: 1}}\n",
			[]string{"line 1", "key server.port", "holds a map", "an integer"}},
		{"list under an int key", "server:\n  port: [1, 2]\n",
			[]string{"line 2", "key server.port", "holds a list of 2 items", "want a single value, an integer such as 1000"}},
		{"block list under a camelCase key", "batch:\n  maxAmount:\n    - 10\n",
			[]string{"line 3", "key batch.maxAmount", "holds a list of 1 item", "such as 100 (--batch-max)"}},
		{"map under a string key", "app:\n  name:\n    first: x\n",
			[]string{"line 3", "key app.name", "holds a map", `a string such as "def"`}},
		{"list under a bool key", "log:\n  debug: [true]\n",
			[]string{"line 2", "key log.debug", "holds a list of 1 item", "true or false (--debug)"}},
		{"list under a duration key", "server:\n  timeout:\n    - 1s\n    - 2s\n",
			[]string{"line 3", "key server.timeout", "holds a list of 2 items", "a duration such as 5s"}},
		{"map under a top-level key", "version:\n  major: 1\n",
			[]string{"line 2", "key version", "holds a map"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := run(t, nil, nil, tt.yaml)
			if err == nil {
				t.Fatalf("Parse accepted a non-scalar")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			// Go's type names mean nothing to a user editing a YAML file.
			for _, bad := range []string{"interface", "[]", "map["} {
				if strings.Contains(err.Error(), bad) {
					t.Errorf("error %q shows a Go type (%s)", err, bad)
				}
			}
		})
	}
}

func TestYAMLStructure(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		want    vals     // when wantErr is empty
		wantErr []string // substrings of the error
	}{
		{
			name: "alias of a scalar",
			yaml: "app:\n  name: &n shared\nversion: *n\n",
			want: vals{Name: "shared", Port: 1000, Timeout: 5 * time.Second, Max: 100, Version: "shared"},
		},
		{
			name: "merge key: own keys win",
			yaml: "base: &b\n  port: 7\n  timeout: 7s\nserver:\n  <<: *b\n  port: 8\n",
			want: vals{Name: "def", Port: 8, Timeout: 7 * time.Second, Max: 100, Version: "v0"},
		},
		{
			name:    "a key given twice",
			yaml:    "server:\n  port: 1\n  timeout: 2s\n  port: 3\n",
			wantErr: []string{"line 4", "key server.port is given twice", "first on line 2"},
		},
		{
			name:    "top level is a list",
			yaml:    "- a\n- b\n",
			wantErr: []string{"line 1", "holds a list of 2 items", "want keys and values"},
		},
		{
			name:    "not YAML at all",
			yaml:    "app:\n  name: [unclosed\n",
			wantErr: []string{"is not valid YAML", "line"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, _, err := run(t, nil, nil, tt.yaml)
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("Parse accepted it: %+v", v)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if v != tt.want {
				t.Errorf("got %+v, want %+v", v, tt.want)
			}
		})
	}
}

// TestSecretValueNotInErrors: a bad secret is reported by where it came
// from, never by its value.
func TestSecretValueNotInErrors(t *testing.T) {
	const secret = "s3cr3t-value"
	tests := []struct {
		name string
		env  map[string]string
		yaml string
		want string
	}{
		{"environment", map[string]string{"TOKEN": secret}, "", "environment TOKEN"},
		{"file", nil, "auth:\n  token: " + secret + "\n", "key auth.token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v vals
			s := program(&v)
			s.Add(settings.Setting{Flag: "token", Env: []string{"TOKEN"}, Key: "auth.token", Usage: "a secret",
				Value: rejectAll{}, Secret: true})
			var cfg func() (string, bool)
			if tt.yaml != "" {
				p := writeFile(t, "config.yaml", tt.yaml)
				cfg = func() (string, bool) { return p, true }
			}
			err := s.Parse(nil, mapEnv(tt.env), cfg)
			if err == nil {
				t.Fatal("Parse accepted a value the setting rejects")
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("error shows the secret: %q", err)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "--token") {
				t.Errorf("error %q does not say where the value came from (%s, --token)", err, tt.want)
			}
		})
	}
}

// rejectAll is a setting that refuses every value, quoting it as many
// flag.Value implementations do.
type rejectAll struct{}

func (rejectAll) Set(s string) error { return fmt.Errorf("%q is not accepted", s) }
func (rejectAll) String() string     { return "" }

func TestHelp(t *testing.T) {
	tests := []struct {
		name     string
		describe bool
		args     []string
		want     []string
		notWant  []string
	}{
		{
			name:     "described, -h",
			describe: true,
			args:     []string{"-h"},
			want: []string{
				"test: a test program for the settings package\n\nUsage:\n  test [flags]\n",
				"  test healthcheck [--url URL]   probe a running test program\n",
				"  --port int\n        a port (env PORT_PRIMARY, PORT_FALLBACK; YAML server.port) (default 1000)\n",
				"  --debug\n        debug logs (env DEBUG; YAML log.debug)\n",
				"  --name string\n        a name (env APP_NAME; YAML app.name) (default \"def\")\n",
				"A flag beats its environment variable, which beats the YAML file, which beats the default.",
				"docs/CONFIGURATION.md",
			},
			notWant: []string{"Usage of", " -port int"},
		},
		{
			name:    "not described, --help",
			args:    []string{"--help"},
			want:    []string{"Usage:\n  test [flags]\n", "  --timeout duration\n"},
			notWant: []string{"test:", "healthcheck"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := defaults()
			var out strings.Builder
			s := settings.New("test", &out)
			s.String(&v.Name, "name", "app.name", "a name", "APP_NAME")
			s.Int(&v.Port, "port", "server.port", "a port", "PORT_PRIMARY", "PORT_FALLBACK")
			s.Bool(&v.Debug, "debug", "log.debug", "debug logs", "DEBUG")
			s.Duration(&v.Timeout, "timeout", "server.timeout", "a timeout", "TIMEOUT")
			if tt.describe {
				s.Describe("a test program for the settings package",
					settings.Subcommand{Name: "healthcheck", Args: "[--url URL]", Summary: "probe a running test program"})
			}
			err := s.Parse(tt.args, mapEnv(nil), nil)
			if !errors.Is(err, flag.ErrHelp) {
				t.Fatalf("Parse(%q) = %v, want flag.ErrHelp (exit status 0)", tt.args, err)
			}
			got := out.String()
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("help lacks %q:\n%s", w, got)
				}
			}
			for _, nw := range tt.notWant {
				if strings.Contains(got, nw) {
					t.Errorf("help has %q:\n%s", nw, got)
				}
			}
			if tt.describe && !strings.HasPrefix(got, "test: ") {
				t.Errorf("help does not start by saying what the program is:\n%s", got)
			}
		})
	}
}

// TestBadFlagIsOneError: a bad flag prints nothing (the program prints the
// returned error once) and the error says how to see the flags.
func TestBadFlagIsOneError(t *testing.T) {
	var v vals
	var out strings.Builder
	s := settings.New("test", &out)
	s.Int(&v.Port, "port", "server.port", "a port", "PORT_PRIMARY")
	err := s.Parse([]string{"--nope"}, mapEnv(nil), nil)
	if err == nil {
		t.Fatal("Parse accepted an unknown flag")
	}
	for _, w := range []string{"-nope", "test -h"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q lacks %q", err, w)
		}
	}
	if out.Len() != 0 {
		t.Errorf("Parse printed %q as well", out.String())
	}
}

func TestBadValueNamesItsSource(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		yaml     string
		contains []string
	}{
		{"flag int", []string{"--port=abc"}, nil, "", []string{"port", "abc"}},
		{"flag duration", []string{"--timeout", "10"}, nil, "", []string{"timeout", "10"}},
		{"flag bool", []string{"--debug=maybe"}, nil, "", []string{"debug", "maybe"}},
		{"unknown flag", []string{"--nope=1"}, nil, "", []string{"nope"}},
		{"env int", nil, map[string]string{"PORT_PRIMARY": "abc"}, "", []string{"environment PORT_PRIMARY=", "abc"}},
		{"env int, second name", nil, map[string]string{"PORT_FALLBACK": "x1"}, "", []string{"environment PORT_FALLBACK=", "x1"}},
		{"env duration without unit", nil, map[string]string{"TIMEOUT": "10"}, "", []string{"environment TIMEOUT=", "10"}},
		{"env bool", nil, map[string]string{"DEBUG": "maybe"}, "", []string{"environment DEBUG=", "maybe"}},
		{"file int", nil, nil, "server:\n  port: abc\n", []string{"config file", "config.yaml", "key server.port", "abc"}},
		{"file float into an int", nil, nil, "batch:\n  maxAmount: 2.5\n", []string{"config file", "config.yaml", "key batch.maxAmount", "2.5"}},
		{"file duration without unit", nil, nil, "server:\n  timeout: 10\n", []string{"config file", "config.yaml", "key server.timeout"}},
		{"file bool", nil, nil, "log:\n  debug: maybe\n", []string{"config file", "config.yaml", "key log.debug", "maybe"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := run(t, tt.args, tt.env, tt.yaml)
			if err == nil {
				t.Fatal("Parse accepted a bad value")
			}
			for _, want := range tt.contains {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}

func TestConfigFilePresence(t *testing.T) {
	tests := []struct {
		name     string
		content  *string // nil: the file does not exist
		required bool
		wantErr  bool
		wantName string
	}{
		{"required and missing", nil, true, true, ""},
		{"optional and missing", nil, false, false, "def"},
		{"required and present", ptr("app:\n  name: fromfile\n"), true, false, "fromfile"},
		{"optional and present", ptr("app:\n  name: fromfile\n"), false, false, "fromfile"},
		{"empty file", ptr(""), true, false, "def"},
		{"comments only", ptr("# nothing here\n"), true, false, "def"},
		{"malformed, required", ptr("app:\n  name: [unclosed\n"), true, true, ""},
		{"malformed, optional", ptr("app: {name: x\n"), false, true, ""},
		{"bad indentation", ptr("app:\n  name: x\n bad: y\n"), false, true, ""},
		{"tab indentation", ptr("app:\n\tname: x\n"), false, true, ""},
		{"top level is a list", ptr("- a\n- b\n"), false, true, ""},
		{"top level is a scalar", ptr("just a string\n"), false, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "app.yaml")
			if tt.content != nil {
				if err := os.WriteFile(path, []byte(*tt.content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			var v vals
			s := program(&v)
			err := s.Parse(nil, mapEnv(nil), func() (string, bool) { return path, tt.required })
			if tt.wantErr {
				if err == nil {
					t.Fatal("Parse succeeded, want an error")
				}
				if !strings.Contains(err.Error(), path) {
					t.Errorf("error %q does not name the file %s", err, path)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if v.Name != tt.wantName {
				t.Errorf("name = %q, want %q", v.Name, tt.wantName)
			}
		})
	}
}

func ptr(s string) *string { return &s }

// TestConfigPathFromFlag: the file's path may come from a flag of the same
// set, so the path is asked for after the command line is parsed.
func TestConfigPathFromFlag(t *testing.T) {
	good := writeFile(t, "good.yaml", "app:\n  name: fromfile\n")
	tests := []struct {
		name     string
		args     []string
		wantName string
		wantErr  bool
	}{
		{"path from --config", []string{"--config", good}, "fromfile", false},
		{"no --config: no file", nil, "def", false},
		{"--config names a missing file", []string{"--config", filepath.Join(t.TempDir(), "missing.yaml")}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v vals
			s := program(&v)
			var path string
			s.FlagSet().StringVar(&path, "config", "", "config file")
			err := s.Parse(tt.args, mapEnv(nil), func() (string, bool) { return path, true })
			if (err != nil) != tt.wantErr {
				t.Fatalf("Parse error = %v, want error %v", err, tt.wantErr)
			}
			if err == nil && v.Name != tt.wantName {
				t.Errorf("name = %q, want %q", v.Name, tt.wantName)
			}
		})
	}
}

func TestEffective(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		yaml string
		want map[string]string
	}{
		{
			name: "defaults",
			want: map[string]string{"name": "def", "port": "1000", "debug": "false", "timeout": "5s", "batch-max": "100", "version": "v0"},
		},
		{
			name: "one setting from each source",
			args: []string{"--name=fromflag"},
			env:  map[string]string{"PORT_FALLBACK": "3002"},
			yaml: "server:\n  timeout: 90s\nlog:\n  debug: true\n",
			want: map[string]string{"name": "fromflag", "port": "3002", "debug": "true", "timeout": "1m30s", "batch-max": "100", "version": "v0"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, s, err := run(t, tt.args, tt.env, tt.yaml)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			got := pairs(t, s.Effective())
			if len(got) != len(tt.want) {
				t.Errorf("Effective lists %d settings, want %d: %v", len(got), len(tt.want), got)
			}
			for k, want := range tt.want {
				if g, ok := got[k]; !ok {
					t.Errorf("Effective lacks %s", k)
				} else if g != want {
					t.Errorf("Effective %s = %q, want %q", k, g, want)
				}
			}
		})
	}
}

func TestEffectiveRedactsSecrets(t *testing.T) {
	var v vals
	s := program(&v)
	token := "changeme"
	s.Add(settings.Setting{Flag: "token", Env: []string{"TOKEN"}, Key: "auth.token", Usage: "a secret", Value: stringFlag{&token}, Secret: true})
	if err := s.Parse(nil, mapEnv(map[string]string{"TOKEN": "s3cr3t-value"}), nil); err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if token != "s3cr3t-value" {
		t.Fatalf("token = %q, want the env value", token)
	}
	got := pairs(t, s.Effective())
	v2, ok := got["token"]
	if !ok {
		t.Fatalf("Effective lacks the secret setting: %v", got)
	}
	if strings.Contains(v2, "s3cr3t") {
		t.Errorf("Effective shows the secret: %q", v2)
	}
	if len(got) != len(allFlags)+1 {
		t.Errorf("Effective lists %d settings, want %d", len(got), len(allFlags)+1)
	}
}

type stringFlag struct{ p *string }

func (f stringFlag) Set(s string) error { *f.p = s; return nil }
func (f stringFlag) String() string {
	if f.p == nil {
		return ""
	}
	return *f.p
}

// pairs turns Effective's key/value list into a map, failing on an odd
// length, a non-string key or a repeated key.
func pairs(t *testing.T, kv []any) map[string]string {
	t.Helper()
	if len(kv)%2 != 0 {
		t.Fatalf("Effective has an odd number of elements: %v", kv)
	}
	m := map[string]string{}
	for i := 0; i < len(kv); i += 2 {
		k, ok := kv[i].(string)
		if !ok {
			t.Fatalf("Effective key %v is a %T, not a string", kv[i], kv[i])
		}
		if _, dup := m[k]; dup {
			t.Errorf("Effective lists %s twice", k)
		}
		m[k] = anyString(kv[i+1])
	}
	return m
}

func anyString(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	if s, ok := v.(interface{ String() string }); ok {
		return s.String()
	}
	return ""
}
