package agency

import (
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// These tests follow docs/CONFIGURATION.md (section agency) and the seed's
// client names in PROTOCOL-seed.md: id/CLI_ID, server.address/
// CLI_SERVER_ADDRESS, log.level/CLI_LOG_LEVEL, batch.maxAmount/
// CLI_BATCH_MAXAMOUNT, data file .data/agency-<id>.csv. LoadConfig reads
// config.yaml from the working directory, so every test runs in its own
// empty one.

// seedConfigYAML is a config.yaml as the seed's client ships it: the
// seed's keys plus loop.* that we do not use.
const seedConfigYAML = `server:
  address: "server:12345"
loop:
  amount: 5
  period: "5s"
log:
  level: "info"
batch:
  maxAmount: 10
`

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// inEmptyDir makes an empty temporary directory the working directory.
func inEmptyDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	t.Chdir(dir)
	return dir
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// nestedYAML writes a dotted key ("batch.maxAmount") as nested YAML
// mappings holding the literal YAML value lit.
func nestedYAML(key, lit string) string {
	var b strings.Builder
	parts := strings.Split(key, ".")
	for i, p := range parts {
		b.WriteString(strings.Repeat("  ", i) + p + ":")
		if i == len(parts)-1 {
			b.WriteString(" " + lit)
		}
		b.WriteString("\n")
	}
	return b.String()
}

func TestConfigDefaults(t *testing.T) {
	inEmptyDir(t)
	c, err := LoadConfig(nil, envOf(map[string]string{"CLI_ID": "1"}), io.Discard)
	if err != nil {
		t.Fatalf("LoadConfig without config.yaml: %v", err)
	}
	tests := []struct {
		name      string
		got, want any
	}{
		{"id", c.ID, 1},
		{"server", c.ServerAddress, "server:12345"},
		{"data", c.DataPath, ".data/agency-1.csv"},
		{"batch-max", c.BatchMaxAmount, 100},
		{"in-flight", c.InFlight, 1024},
		{"protocol", c.Protocol, "loteria"},
		{"timeout", c.Timeout, 30 * time.Second},
		{"winners-timeout", c.WinnersTimeout, 10 * time.Minute},
		{"dial-attempts", c.DialAttempts, 0},
		{"retry-base", c.RetryBase, 100 * time.Millisecond},
		{"retry-max", c.RetryMax, 10 * time.Second},
		{"retry-budget", c.RetryBudget, 5 * time.Minute},
		{"rate", c.Rate, 0.0},
		{"rounds", c.Rounds, 1},
		{"round-data", c.RoundData, "file"},
		{"bets-per-round", c.BetsPerRound, 1000},
		{"data-seed", c.DataSeed, 1},
		{"log-level", c.LogLevel, "INFO"},
		{"log-format", c.LogFormat, "tint"},
		{"metrics-addr", c.MetricsAddr, ""},
		{"linger", c.Linger, time.Duration(0)},
		{"config", c.ConfigFile, "config.yaml"},
		{"unknown keys", len(c.UnknownKeys), 0},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("default %s = %v, want %v", tt.name, tt.got, tt.want)
		}
	}
}

func TestConfigSeedConfigYAML(t *testing.T) {
	tests := []struct {
		name        string
		extra       string // appended to the seed's config.yaml
		env         map[string]string
		wantID      int
		wantData    string
		wantUnknown []string
	}{
		{"id from CLI_ID", "", map[string]string{"CLI_ID": "3"}, 3, ".data/agency-3.csv", []string{"loop.amount", "loop.period"}},
		{"id in the file", "id: 2\n", nil, 2, ".data/agency-2.csv", []string{"loop.amount", "loop.period"}},
		{"CLI_ID over the file's id", "id: 2\n", map[string]string{"CLI_ID": "4"}, 4, ".data/agency-4.csv", []string{"loop.amount", "loop.period"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inEmptyDir(t)
			writeFile(t, "config.yaml", seedConfigYAML+tt.extra)
			c, err := LoadConfig(nil, envOf(tt.env), io.Discard)
			if err != nil {
				t.Fatalf("LoadConfig with the seed's config.yaml: %v", err)
			}
			checks := []struct {
				name      string
				got, want any
			}{
				{"ID", c.ID, tt.wantID},
				{"ServerAddress", c.ServerAddress, "server:12345"},
				{"LogLevel", c.LogLevel, "info"},
				{"BatchMaxAmount", c.BatchMaxAmount, 10},
				{"DataPath", c.DataPath, tt.wantData},
				{"InFlight", c.InFlight, 1024},
				{"Protocol", c.Protocol, "loteria"},
			}
			for _, ck := range checks {
				if ck.got != ck.want {
					t.Errorf("%s = %v, want %v", ck.name, ck.got, ck.want)
				}
			}
			got := slices.Sorted(slices.Values(c.UnknownKeys))
			if !slices.Equal(got, tt.wantUnknown) {
				t.Errorf("UnknownKeys = %q, want %q", got, tt.wantUnknown)
			}
		})
	}
}

// agencySettings is the table of docs/CONFIGURATION.md, each row with a
// non-default value and the field it must land in.
var agencySettings = []struct {
	flag, env, key string
	value          string // as a flag or env value
	yaml           string // as a YAML literal
	get            func(c *ProgramConfig) any
	want           any
}{
	{"id", "CLI_ID", "id", "7", "7", func(c *ProgramConfig) any { return c.ID }, 7},
	{"id", "CLI_ID", "id", "7", "7", func(c *ProgramConfig) any { return c.DataPath }, ".data/agency-7.csv"},
	{"server", "CLI_SERVER_ADDRESS", "server.address", "central:5000", `"central:5000"`, func(c *ProgramConfig) any { return c.ServerAddress }, "central:5000"},
	{"data", "CLI_DATA_PATH", "data.path", "/app/.data/bets.csv", "/app/.data/bets.csv", func(c *ProgramConfig) any { return c.DataPath }, "/app/.data/bets.csv"},
	{"batch-max", "CLI_BATCH_MAXAMOUNT", "batch.maxAmount", "25", "25", func(c *ProgramConfig) any { return c.BatchMaxAmount }, 25},
	{"in-flight", "CLI_BATCH_INFLIGHT", "batch.inFlight", "1", "1", func(c *ProgramConfig) any { return c.InFlight }, 1},
	{"protocol", "CLI_PROTOCOL", "protocol", "seed", "seed", func(c *ProgramConfig) any { return c.Protocol }, "seed"},
	{"timeout", "CLI_TIMEOUT", "server.timeout", "5s", "5s", func(c *ProgramConfig) any { return c.Timeout }, 5 * time.Second},
	{"winners-timeout", "CLI_WINNERS_TIMEOUT", "server.winnersTimeout", "2m", "2m", func(c *ProgramConfig) any { return c.WinnersTimeout }, 2 * time.Minute},
	{"dial-attempts", "CLI_DIAL_ATTEMPTS", "server.dialAttempts", "3", "3", func(c *ProgramConfig) any { return c.DialAttempts }, 3},
	{"retry-base", "CLI_RETRY_BASE", "server.retryBase", "250ms", "250ms", func(c *ProgramConfig) any { return c.RetryBase }, 250 * time.Millisecond},
	{"retry-max", "CLI_RETRY_MAX", "server.retryMax", "30s", "30s", func(c *ProgramConfig) any { return c.RetryMax }, 30 * time.Second},
	{"retry-budget", "CLI_RETRY_BUDGET", "server.retryBudget", "1h", "1h", func(c *ProgramConfig) any { return c.RetryBudget }, time.Hour},
	{"rate", "CLI_SEND_RATE", "batch.rate", "250.5", "250.5", func(c *ProgramConfig) any { return c.Rate }, 250.5},
	{"rounds", "CLI_ROUNDS", "rounds.count", "0", "0", func(c *ProgramConfig) any { return c.Rounds }, 0},
	{"rounds", "CLI_ROUNDS", "rounds.count", "0", "0", func(c *ProgramConfig) any { return c.Options().Rounds }, UntilStopped},
	{"round-data", "CLI_ROUND_DATA", "rounds.data", "generate", "generate", func(c *ProgramConfig) any { return c.RoundData }, "generate"},
	{"bets-per-round", "CLI_BETS_PER_ROUND", "rounds.bets", "5000", "5000", func(c *ProgramConfig) any { return c.BetsPerRound }, 5000},
	{"data-seed", "CLI_DATA_SEED", "rounds.seed", "42", "42", func(c *ProgramConfig) any { return c.DataSeed }, 42},
	{"log-level", "CLI_LOG_LEVEL", "log.level", "DEBUG", "DEBUG", func(c *ProgramConfig) any { return c.LogLevel }, "DEBUG"},
	{"log-format", "LOG_FORMAT", "log.format", "json", "json", func(c *ProgramConfig) any { return c.LogFormat }, "json"},
	{"metrics-addr", "METRICS_ADDR", "metrics.address", ":9465", `":9465"`, func(c *ProgramConfig) any { return c.MetricsAddr }, ":9465"},
	{"linger", "CLI_LINGER", "metrics.linger", "15s", "15s", func(c *ProgramConfig) any { return c.Linger }, 15 * time.Second},
	{"tls-server-name", "CLI_TLS_SERVER_NAME", "tls.serverName", "central.example", "central.example", func(c *ProgramConfig) any { return c.TLSServerName }, "central.example"},
}

// TestConfigEachSettingFromEachSource: every documented setting, through its
// flag, its environment variable and its YAML key (in ./config.yaml, in
// CLI_CONFIG's file and in --config's), lands in its field.
func TestConfigEachSettingFromEachSource(t *testing.T) {
	for _, s := range agencySettings {
		t.Run(s.env+"/"+s.flag+"="+s.value, func(t *testing.T) {
			// The id is required: give it through the environment,
			// except when the id is what is tested.
			base := map[string]string{"CLI_ID": "1"}
			if s.flag == "id" {
				base = map[string]string{}
			}
			with := func(k, v string) map[string]string {
				m := map[string]string{k: v}
				for bk, bv := range base {
					if _, ok := m[bk]; !ok {
						m[bk] = bv
					}
				}
				return m
			}
			content := nestedYAML(s.key, s.yaml)
			sources := []struct {
				name  string
				setup func(t *testing.T, dir string) ([]string, map[string]string)
			}{
				{"flag", func(*testing.T, string) ([]string, map[string]string) {
					return []string{"--" + s.flag + "=" + s.value}, base
				}},
				{"env", func(*testing.T, string) ([]string, map[string]string) {
					return nil, with(s.env, s.value)
				}},
				{"file ./config.yaml", func(t *testing.T, dir string) ([]string, map[string]string) {
					writeFile(t, "config.yaml", content)
					return nil, base
				}},
				{"file via CLI_CONFIG", func(t *testing.T, dir string) ([]string, map[string]string) {
					p := filepath.Join(dir, "agency.yaml")
					writeFile(t, p, content)
					return nil, with("CLI_CONFIG", p)
				}},
				{"file via --config", func(t *testing.T, dir string) ([]string, map[string]string) {
					p := filepath.Join(dir, "agency.yaml")
					writeFile(t, p, content)
					return []string{"--config", p}, base
				}},
			}
			for _, src := range sources {
				t.Run(src.name, func(t *testing.T) {
					dir := inEmptyDir(t)
					args, env := src.setup(t, dir)
					c, err := LoadConfig(args, envOf(env), io.Discard)
					if err != nil {
						t.Fatalf("LoadConfig: %v", err)
					}
					if got := s.get(c); got != s.want {
						t.Errorf("%s: got %v, want %v", s.flag, got, s.want)
					}
				})
			}
		})
	}
}

func TestConfigPrecedence(t *testing.T) {
	file := "id: 1\nserver:\n  address: fromfile:1\nbatch:\n  maxAmount: 10\nlog:\n  level: WARN\n"
	env := map[string]string{"CLI_ID": "2", "CLI_SERVER_ADDRESS": "fromenv:2", "CLI_BATCH_MAXAMOUNT": "20", "CLI_LOG_LEVEL": "ERROR"}
	flags := []string{"--id=3", "--server=fromflag:3", "--batch-max=30", "--log-level=DEBUG"}
	tests := []struct {
		name   string
		args   []string
		env    map[string]string
		file   bool
		id     int
		server string
		max    int
		level  string
	}{
		{"file over default", nil, nil, true, 1, "fromfile:1", 10, "WARN"},
		{"env over file", nil, env, true, 2, "fromenv:2", 20, "ERROR"},
		{"env over default", nil, env, false, 2, "fromenv:2", 20, "ERROR"},
		{"flag over env and file", flags, env, true, 3, "fromflag:3", 30, "DEBUG"},
		{"flag over file", flags, nil, true, 3, "fromflag:3", 30, "DEBUG"},
		{"mixed", []string{"--batch-max=30"}, map[string]string{"CLI_SERVER_ADDRESS": "fromenv:2"}, true, 1, "fromenv:2", 30, "WARN"},
		{"default server under an id from flag", []string{"--id=3"}, nil, false, 3, "server:12345", 100, "INFO"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inEmptyDir(t)
			if tt.file {
				writeFile(t, "config.yaml", file)
			}
			c, err := LoadConfig(tt.args, envOf(tt.env), io.Discard)
			if err != nil {
				t.Fatalf("LoadConfig: %v", err)
			}
			if c.ID != tt.id || c.ServerAddress != tt.server || c.BatchMaxAmount != tt.max || c.LogLevel != tt.level {
				t.Errorf("id, server, batch-max, log-level = %d, %q, %d, %q; want %d, %q, %d, %q",
					c.ID, c.ServerAddress, c.BatchMaxAmount, c.LogLevel, tt.id, tt.server, tt.max, tt.level)
			}
		})
	}
}

func TestConfigFile(t *testing.T) {
	tests := []struct {
		name     string
		files    map[string]string // relative to the working directory
		args     []string
		env      map[string]string
		wantErr  []string // substrings; nil means success
		wantAddr string
	}{
		{
			name:     "no config.yaml: fine",
			env:      map[string]string{"CLI_ID": "1"},
			wantAddr: "server:12345",
		},
		{
			name:     "./config.yaml is read by default",
			files:    map[string]string{"config.yaml": "id: 1\nserver:\n  address: cwd:1\n"},
			wantAddr: "cwd:1",
		},
		{
			name:    "CLI_CONFIG names a missing file",
			env:     map[string]string{"CLI_ID": "1", "CLI_CONFIG": "missing.yaml"},
			wantErr: []string{"missing.yaml"},
		},
		{
			name:    "--config names a missing file",
			args:    []string{"--config", "missing.yaml"},
			env:     map[string]string{"CLI_ID": "1"},
			wantErr: []string{"missing.yaml"},
		},
		{
			name:    "CLI_CONFIG=config.yaml, missing",
			env:     map[string]string{"CLI_ID": "1", "CLI_CONFIG": "config.yaml"},
			wantErr: []string{"config.yaml"},
		},
		{
			name:    "explicit --config config.yaml, missing",
			args:    []string{"--config", "config.yaml"},
			env:     map[string]string{"CLI_ID": "1"},
			wantErr: []string{"config.yaml"},
		},
		{
			name:    "explicit --config ./config.yaml, missing",
			args:    []string{"--config", "./config.yaml"},
			env:     map[string]string{"CLI_ID": "1"},
			wantErr: []string{"config.yaml"},
		},
		{
			name: "CLI_CONFIG replaces ./config.yaml",
			files: map[string]string{
				"config.yaml": "id: 1\nserver:\n  address: cwd:1\n",
				"other.yaml":  "id: 1\nserver:\n  address: other:2\n",
			},
			env:      map[string]string{"CLI_CONFIG": "other.yaml"},
			wantAddr: "other:2",
		},
		{
			name: "--config over CLI_CONFIG",
			files: map[string]string{
				"env.yaml":  "id: 1\nserver:\n  address: env:1\n",
				"flag.yaml": "id: 1\nserver:\n  address: flag:2\n",
			},
			args:     []string{"--config=flag.yaml"},
			env:      map[string]string{"CLI_CONFIG": "env.yaml"},
			wantAddr: "flag:2",
		},
		{
			name:     "--config over a missing CLI_CONFIG",
			files:    map[string]string{"flag.yaml": "id: 1\nserver:\n  address: flag:2\n"},
			args:     []string{"--config=flag.yaml"},
			env:      map[string]string{"CLI_CONFIG": "missing.yaml"},
			wantAddr: "flag:2",
		},
		{
			name:    "malformed ./config.yaml is an error even though optional",
			files:   map[string]string{"config.yaml": "server:\n  address: [oops\n"},
			env:     map[string]string{"CLI_ID": "1"},
			wantErr: []string{"config.yaml"},
		},
		{
			name:    "bad value in the file names the key",
			files:   map[string]string{"config.yaml": "id: 1\nbatch:\n  maxAmount: lots\n"},
			wantErr: []string{"config.yaml", "batch.maxAmount", "lots"},
		},
		{
			name:    "bad CLI_BATCH_MAXAMOUNT names the variable",
			env:     map[string]string{"CLI_ID": "1", "CLI_BATCH_MAXAMOUNT": "ten"},
			wantErr: []string{"environment CLI_BATCH_MAXAMOUNT=", "ten"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inEmptyDir(t)
			for name, content := range tt.files {
				writeFile(t, name, content)
			}
			c, err := LoadConfig(tt.args, envOf(tt.env), io.Discard)
			if tt.wantErr != nil {
				if err == nil {
					t.Fatal("LoadConfig succeeded, want an error")
				}
				for _, s := range tt.wantErr {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not contain %q", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("LoadConfig: %v", err)
			}
			if c.ServerAddress != tt.wantAddr {
				t.Errorf("server address = %q, want %q", c.ServerAddress, tt.wantAddr)
			}
		})
	}
}

func TestConfigIDRequired(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		file string
	}{
		{"nowhere", nil, nil, ""},
		{"nowhere, with the seed's config.yaml", nil, nil, seedConfigYAML},
		{"CLI_ID empty", nil, map[string]string{"CLI_ID": ""}, ""},
		{"CLI_ID=0", nil, map[string]string{"CLI_ID": "0"}, ""},
		{"--id=-1", []string{"--id=-1"}, nil, ""},
		{"id: 0 in the file", nil, nil, "id: 0\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inEmptyDir(t)
			if tt.file != "" {
				writeFile(t, "config.yaml", tt.file)
			}
			_, err := LoadConfig(tt.args, envOf(tt.env), io.Discard)
			if err == nil {
				t.Fatal("LoadConfig accepted an agency without an id")
			}
			// The message says how to set it.
			for _, s := range []string{"--id", "CLI_ID"} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %s", err, s)
				}
			}
		})
	}
}

func TestConfigValidation(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		wantErr  bool
		contains []string
		protocol string // when no error
	}{
		{"protocol loteria", []string{"--protocol=loteria"}, nil, false, nil, "loteria"},
		{"protocol seed", []string{"--protocol=seed"}, nil, false, nil, "seed"},
		{"CLI_PROTOCOL=seed", nil, map[string]string{"CLI_PROTOCOL": "seed"}, false, nil, "seed"},
		{"protocol tcp", []string{"--protocol=tcp"}, nil, true, []string{"tcp", "loteria", "seed"}, ""},
		{"CLI_PROTOCOL=http", nil, map[string]string{"CLI_PROTOCOL": "http"}, true, []string{"http", "loteria", "seed"}, ""},
		{"CLI_BATCH_MAXAMOUNT=0", nil, map[string]string{"CLI_BATCH_MAXAMOUNT": "0"}, true, []string{"batch.maxAmount", "0"}, ""},
		{"--batch-max=-5", []string{"--batch-max=-5"}, nil, true, []string{"batch.maxAmount", "-5"}, ""},
		{"positional argument", []string{"extra"}, nil, true, []string{"extra"}, ""},
		{"positional after flags", []string{"--id", "1", "run"}, nil, true, []string{"run"}, ""},
		{"unknown flag", []string{"--nope"}, nil, true, []string{"nope"}, ""},
		{"rate negative", []string{"--rate=-1"}, nil, true, []string{"-1", "bets per second"}, ""},
		{"CLI_SEND_RATE not a number", nil, map[string]string{"CLI_SEND_RATE": "fast"}, true, []string{"CLI_SEND_RATE", "fast"}, ""},
		{"rounds negative", []string{"--rounds=-2"}, nil, true, []string{"rounds", "-2"}, ""},
		{"round data unknown", []string{"--round-data=random"}, nil, true, []string{"random", "file", "generate"}, ""},
		{"retry max below base", []string{"--retry-base=2s", "--retry-max=1s"}, nil, true, []string{"retry max", "1s", "2s"}, ""},
		{"retry budget zero", []string{"--retry-budget=0s"}, nil, true, []string{"retry budget"}, ""},
		{"dial attempts negative", []string{"--dial-attempts=-1"}, nil, true, []string{"dial attempts"}, ""},
		// An id of more than 9 digits cannot be sent in a batch header or a HELLO.
		{"CLI_ID beyond the wire's agency ids", nil, map[string]string{"CLI_ID": "9999999999"}, true, []string{"9999999999", "999999999", "CLI_ID"}, ""},
		{"CLI_ID=1000000000", nil, map[string]string{"CLI_ID": "1000000000"}, true, []string{"1000000000", "999999999"}, ""},
		{"CLI_ID at the wire's limit", nil, map[string]string{"CLI_ID": "999999999"}, false, nil, "loteria"},
		// A server address no dial can use is a configuration error, not a retry.
		{"CLI_SERVER_ADDRESS without a port", nil, map[string]string{"CLI_SERVER_ADDRESS": "nohostport"}, true, []string{"nohostport", "missing port", "host:port", "CLI_SERVER_ADDRESS"}, ""},
		{"--server empty", []string{"--server="}, nil, true, []string{"missing port", "--server"}, ""},
		{"IPv6 without brackets", nil, map[string]string{"CLI_SERVER_ADDRESS": "::1"}, true, []string{"::1", "too many colons", "host:port"}, ""},
		{"port 0", nil, map[string]string{"CLI_SERVER_ADDRESS": "central:0"}, true, []string{"central:0", "1..65535"}, ""},
		{"port 65536", nil, map[string]string{"CLI_SERVER_ADDRESS": "central:65536"}, true, []string{"65536", "1..65535"}, ""},
		{"port by name", nil, map[string]string{"CLI_SERVER_ADDRESS": "central:http"}, true, []string{"http", "1..65535"}, ""},
		{"port 65535", nil, map[string]string{"CLI_SERVER_ADDRESS": "central:65535"}, false, nil, "loteria"},
		{"IPv6 in brackets", nil, map[string]string{"CLI_SERVER_ADDRESS": "[::1]:12345"}, false, nil, "loteria"},
		{"no host (this machine)", nil, map[string]string{"CLI_SERVER_ADDRESS": ":12345"}, false, nil, "loteria"},
		{"generate with bets per round", []string{"--round-data=generate", "--bets-per-round=10"}, nil, false, nil, "loteria"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inEmptyDir(t)
			env := map[string]string{"CLI_ID": "1"}
			for k, v := range tt.env {
				env[k] = v
			}
			c, err := LoadConfig(tt.args, envOf(env), io.Discard)
			if !tt.wantErr {
				if err != nil {
					t.Fatalf("LoadConfig: %v", err)
				}
				if c.Protocol != tt.protocol {
					t.Errorf("protocol = %q, want %q", c.Protocol, tt.protocol)
				}
				return
			}
			if err == nil {
				t.Fatal("LoadConfig accepted it")
			}
			for _, s := range tt.contains {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
		})
	}
}

// TestConfigEmptyProtocol: the protocol is loteria or seed; an empty value
// must not leave the effective configuration with neither.
func TestConfigEmptyProtocol(t *testing.T) {
	tests := []struct {
		name string
		args []string
		file string
	}{
		{"--protocol=", []string{"--protocol="}, ""},
		{"protocol: \"\" in config.yaml", nil, "protocol: \"\"\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inEmptyDir(t)
			if tt.file != "" {
				writeFile(t, "config.yaml", tt.file)
			}
			c, err := LoadConfig(tt.args, envOf(map[string]string{"CLI_ID": "1"}), io.Discard)
			if err != nil {
				return // refusing it is fine
			}
			if c.Protocol != ProtocolLoteria && c.Protocol != ProtocolSeed {
				t.Errorf("protocol = %q, want an error or loteria/seed", c.Protocol)
			}
		})
	}
}

// TestConfigEffective: the configuration printed at start lists every
// documented setting, once, with its effective value.
func TestConfigEffective(t *testing.T) {
	inEmptyDir(t)
	writeFile(t, "config.yaml", seedConfigYAML)
	c, err := LoadConfig([]string{"--protocol=seed"}, envOf(map[string]string{"CLI_ID": "2"}), io.Discard)
	if err != nil {
		t.Fatalf("LoadConfig: %v", err)
	}
	kv := c.Effective()
	if len(kv)%2 != 0 {
		t.Fatalf("Effective has an odd length: %v", kv)
	}
	got := map[string]string{}
	for i := 0; i < len(kv); i += 2 {
		k, _ := kv[i].(string)
		v, _ := kv[i+1].(string)
		got[k] = v
	}
	// The TLS files only work together (TestConfigTLS sets them).
	documented := []string{"tls-cert", "tls-key", "tls-ca"}
	for _, s := range agencySettings {
		if !slices.Contains(documented, s.flag) {
			documented = append(documented, s.flag)
		}
	}
	for _, f := range documented {
		if _, ok := got[f]; !ok {
			t.Errorf("Effective lacks %s", f)
		}
	}
	for f := range got {
		if !slices.Contains(documented, f) {
			t.Errorf("Effective lists %s, which docs/CONFIGURATION.md does not", f)
		}
	}
	for f, want := range map[string]string{"id": "2", "server": "server:12345", "batch-max": "10", "log-level": "info", "protocol": "seed", "data": ".data/agency-2.csv"} {
		if got[f] != want {
			t.Errorf("Effective %s = %q, want %q", f, got[f], want)
		}
	}
}

// TestConfigTLS: the three TLS files go together; with them the id may
// come from the certificate (the program reads it there).
func TestConfigTLS(t *testing.T) {
	inEmptyDir(t)
	c, err := LoadConfig(nil, envOf(map[string]string{"CLI_TLS_CERT": "a.pem", "CLI_TLS_KEY": "a-key.pem", "CLI_TLS_CA": "ca.pem"}), io.Discard)
	if err != nil {
		t.Fatalf("TLS without --id: %v", err)
	}
	if !c.TLSEnabled() || c.ID != 0 {
		t.Fatalf("TLS enabled %v, id %d", c.TLSEnabled(), c.ID)
	}
	c.SetID(4)
	if c.DataPath != ".data/agency-4.csv" {
		t.Errorf("data path %q after SetID(4)", c.DataPath)
	}
	if _, err := LoadConfig(nil, envOf(map[string]string{"CLI_TLS_CERT": "a.pem", "CLI_ID": "1"}), io.Discard); err == nil || !strings.Contains(err.Error(), "CLI_TLS_KEY") {
		t.Errorf("a certificate without its key: %v, want an error naming CLI_TLS_KEY", err)
	}
}
