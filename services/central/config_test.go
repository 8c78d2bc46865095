package central

import (
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// These tests follow docs/CONFIGURATION.md (section central) and the seed's
// names in PROTOCOL-seed.md: SERVER_PORT, SERVER_LISTEN_BACKLOG,
// LOGGING_LEVEL, CLIENT_COUNT.

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func writeConfig(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "central.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// nestedYAML writes a dotted key ("server.port") as nested YAML mappings
// holding the literal YAML value lit.
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
	c, err := LoadConfig(nil, envOf(nil), io.Discard)
	if err != nil {
		t.Fatalf("LoadConfig: %v", err)
	}
	tests := []struct {
		name      string
		got, want any
	}{
		{"host", c.Host, ""},
		{"port", c.Port, "12345"},
		{"tls address", c.Server.TLSAddress, ""},
		{"rounds", c.Server.Rounds, 1},
		{"round cutoff", c.Server.RoundCutoff, time.Duration(0)},
		{"barrier timeout", c.Server.BarrierTimeout, time.Duration(0)},
		{"anonymous end", c.Server.AllowAnonymousEnd, false},
		{"handshake-timeout", c.Server.HandshakeTimeout, 10 * time.Second},
		{"per-address cap", c.Server.MaxConnectionsPerAddress, 0},
		{"address", c.Server.Address, ":12345"},
		{"backlog", c.Backlog, 0},
		{"clients", c.Server.Agencies, 5},
		{"store", c.StorePath, "./data/bets.csv"},
		{"max-frame", c.Server.MaxFrame, 65536},
		{"idle-timeout", c.Server.IdleTimeout, 60 * time.Second},
		{"max-connections", c.Server.MaxConnections, 20000},
		{"shutdown-timeout", c.Server.ShutdownTimeout, 10 * time.Second},
		{"log-level", c.LogLevel, "INFO"},
		{"log-format", c.LogFormat, "tint"},
		{"metrics-addr", c.MetricsAddr, ":9464"},
		{"pprof", c.Pprof, false},
		{"config", c.ConfigFile, ""},
		{"unknown keys", len(c.UnknownKeys), 0},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("default %s = %v, want %v", tt.name, tt.got, tt.want)
		}
	}
}

// centralSettings is the table of docs/CONFIGURATION.md, each row with a
// non-default value and the field it must land in.
var centralSettings = []struct {
	flag, env, key string
	value          string // as a flag or env value
	yaml           string // as a YAML literal
	get            func(c *ProgramConfig) any
	want           any
}{
	{"host", "SERVER_HOST", "server.host", "127.0.0.1", `"127.0.0.1"`, func(c *ProgramConfig) any { return c.Host }, "127.0.0.1"},
	{"host", "SERVER_HOST", "server.host", "127.0.0.1", `"127.0.0.1"`, func(c *ProgramConfig) any { return c.Server.Address }, "127.0.0.1:12345"},
	{"host", "SERVER_HOST", "server.host", "::1", `"::1"`, func(c *ProgramConfig) any { return c.Server.Address }, "[::1]:12345"},
	{"port", "SERVER_PORT", "server.port", "4000", "4000", func(c *ProgramConfig) any { return c.Port }, "4000"},
	{"rounds", "ROUNDS", "rounds.count", "3", "3", func(c *ProgramConfig) any { return c.Server.Rounds }, 3},
	{"rounds", "ROUNDS", "rounds.count", "0", "0", func(c *ProgramConfig) any { return c.Server.Rounds }, -1},
	{"round-cutoff", "ROUND_CUTOFF", "rounds.cutoff", "1m", "1m", func(c *ProgramConfig) any { return c.Server.RoundCutoff }, time.Minute},
	{"barrier-timeout", "BARRIER_TIMEOUT", "barrier.timeout", "30s", "30s", func(c *ProgramConfig) any { return c.Server.BarrierTimeout }, 30 * time.Second},
	{"allow-anonymous-end", "ALLOW_ANONYMOUS_END", "barrier.allowAnonymousEnd", "true", "true", func(c *ProgramConfig) any { return c.Server.AllowAnonymousEnd }, true},
	{"handshake-timeout", "HANDSHAKE_TIMEOUT", "server.handshakeTimeout", "3s", "3s", func(c *ProgramConfig) any { return c.Server.HandshakeTimeout }, 3 * time.Second},
	{"max-connections-per-address", "MAX_CONNECTIONS_PER_ADDRESS", "server.maxConnectionsPerAddress", "50", "50", func(c *ProgramConfig) any { return c.Server.MaxConnectionsPerAddress }, 50},
	{"status-log-interval", "STATUS_LOG_INTERVAL", "barrier.statusLogInterval", "5s", "5s", func(c *ProgramConfig) any { return c.Server.StatusLogInterval }, 5 * time.Second},
	{"port", "SERVER_PORT", "server.port", "4000", "4000", func(c *ProgramConfig) any { return c.Server.Address }, ":4000"},
	{"backlog", "SERVER_LISTEN_BACKLOG", "server.listenBacklog", "128", "128", func(c *ProgramConfig) any { return c.Backlog }, 128},
	{"clients", "CLIENT_COUNT", "barrier.clientCount", "3", "3", func(c *ProgramConfig) any { return c.Server.Agencies }, 3},
	{"store", "STORE_PATH", "store.path", "/var/lib/loteria/bets.csv", "/var/lib/loteria/bets.csv", func(c *ProgramConfig) any { return c.StorePath }, "/var/lib/loteria/bets.csv"},
	{"max-frame", "MAX_FRAME_BYTES", "server.maxFrameBytes", "8192", "8192", func(c *ProgramConfig) any { return c.Server.MaxFrame }, 8192},
	{"idle-timeout", "IDLE_TIMEOUT", "server.idleTimeout", "90s", "90s", func(c *ProgramConfig) any { return c.Server.IdleTimeout }, 90 * time.Second},
	{"max-connections", "MAX_CONNECTIONS", "server.maxConnections", "100", "100", func(c *ProgramConfig) any { return c.Server.MaxConnections }, 100},
	{"shutdown-timeout", "SHUTDOWN_TIMEOUT", "server.shutdownTimeout", "3s", "3s", func(c *ProgramConfig) any { return c.Server.ShutdownTimeout }, 3 * time.Second},
	{"log-level", "LOGGING_LEVEL", "log.level", "DEBUG", "DEBUG", func(c *ProgramConfig) any { return c.LogLevel }, "DEBUG"},
	{"log-format", "LOG_FORMAT", "log.format", "json", "json", func(c *ProgramConfig) any { return c.LogFormat }, "json"},
	{"metrics-addr", "METRICS_ADDR", "metrics.address", "127.0.0.1:9999", `"127.0.0.1:9999"`, func(c *ProgramConfig) any { return c.MetricsAddr }, "127.0.0.1:9999"},
	{"pprof", "PPROF_ENABLED", "metrics.pprof", "true", "true", func(c *ProgramConfig) any { return c.Pprof }, true},
}

// TestConfigEachSettingFromEachSource: every documented setting, through its
// flag, its environment variable and its YAML key (the file named by
// CENTRAL_CONFIG or --config), lands in its field.
func TestConfigEachSettingFromEachSource(t *testing.T) {
	for _, s := range centralSettings {
		t.Run(s.env+"/"+s.value, func(t *testing.T) {
			sources := []struct {
				name string
				args func() []string
				env  func() map[string]string
			}{
				{"flag", func() []string { return []string{"--" + s.flag + "=" + s.value} }, func() map[string]string { return nil }},
				{"env", func() []string { return nil }, func() map[string]string { return map[string]string{s.env: s.value} }},
				{"file via CENTRAL_CONFIG", func() []string { return nil }, func() map[string]string {
					return map[string]string{"CENTRAL_CONFIG": writeConfig(t, nestedYAML(s.key, s.yaml))}
				}},
				{"file via --config", func() []string { return []string{"--config", writeConfig(t, nestedYAML(s.key, s.yaml))} }, func() map[string]string { return nil }},
			}
			for _, src := range sources {
				t.Run(src.name, func(t *testing.T) {
					c, err := LoadConfig(src.args(), envOf(src.env()), io.Discard)
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

// TestConfigSeedEnvironment: the seed's server environment as a whole,
// beside variables that are not ours.
func TestConfigSeedEnvironment(t *testing.T) {
	env := map[string]string{
		"SERVER_PORT":           "12345",
		"SERVER_LISTEN_BACKLOG": "5",
		"LOGGING_LEVEL":         "DEBUG",
		"CLIENT_COUNT":          "3",
		"PYTHONUNBUFFERED":      "1",
	}
	c, err := LoadConfig(nil, envOf(env), io.Discard)
	if err != nil {
		t.Fatalf("LoadConfig: %v", err)
	}
	tests := []struct {
		name      string
		got, want any
	}{
		{"Port", c.Port, "12345"},
		{"Server.Address", c.Server.Address, ":12345"},
		{"Backlog", c.Backlog, 5},
		{"LogLevel", c.LogLevel, "DEBUG"},
		{"Server.Agencies", c.Server.Agencies, 3},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
		}
	}
}

func TestConfigPrecedence(t *testing.T) {
	file := "server:\n  port: 1111\nbarrier:\n  clientCount: 11\nlog:\n  level: WARN\n"
	tests := []struct {
		name       string
		args       []string
		env        map[string]string
		file       bool
		wantPort   string
		wantCount  int
		wantLevel  string
		wantOrigin string // of port
	}{
		{"default", nil, nil, false, "12345", 5, "INFO", ""},
		{"file over default", nil, nil, true, "1111", 11, "WARN", "file"},
		{"env over file", nil, map[string]string{"SERVER_PORT": "2222", "CLIENT_COUNT": "22", "LOGGING_LEVEL": "ERROR"}, true, "2222", 22, "ERROR", "env SERVER_PORT"},
		{"flag over env and file", []string{"--port", "3333", "--clients", "33", "--log-level", "DEBUG"},
			map[string]string{"SERVER_PORT": "2222", "CLIENT_COUNT": "22", "LOGGING_LEVEL": "ERROR"}, true, "3333", 33, "DEBUG", "flag"},
		{"flag over file", []string{"--port=3333"}, nil, true, "3333", 11, "WARN", "flag"},
		{"mixed", []string{"--log-level=DEBUG"}, map[string]string{"CLIENT_COUNT": "22"}, true, "1111", 22, "DEBUG", "file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			if tt.file {
				args = append([]string{"--config", writeConfig(t, file)}, args...)
			}
			c, err := LoadConfig(args, envOf(tt.env), io.Discard)
			if err != nil {
				t.Fatalf("LoadConfig: %v", err)
			}
			if c.Port != tt.wantPort || c.Server.Agencies != tt.wantCount || c.LogLevel != tt.wantLevel {
				t.Errorf("port, clients, level = %s, %d, %q; want %s, %d, %q",
					c.Port, c.Server.Agencies, c.LogLevel, tt.wantPort, tt.wantCount, tt.wantLevel)
			}
			if o := c.set.Origin("port"); o != tt.wantOrigin {
				t.Errorf("Origin(port) = %q, want %q", o, tt.wantOrigin)
			}
		})
	}
}

func TestConfigFile(t *testing.T) {
	good := writeConfig(t, "server:\n  port: 1111\nloop:\n  amount: 5\n")
	other := writeConfig(t, "server:\n  port: 2222\n")
	missing := filepath.Join(t.TempDir(), "missing.yaml")
	malformed := writeConfig(t, "server:\n  port: [1111\n")
	tests := []struct {
		name        string
		args        []string
		env         map[string]string
		wantErr     []string // substrings; nil means success
		wantPort    string
		wantUnknown []string
	}{
		{"CENTRAL_CONFIG", nil, map[string]string{"CENTRAL_CONFIG": good}, nil, "1111", []string{"loop.amount"}},
		{"--config", []string{"--config", good}, nil, nil, "1111", []string{"loop.amount"}},
		{"--config over CENTRAL_CONFIG", []string{"--config", other}, map[string]string{"CENTRAL_CONFIG": good}, nil, "2222", nil},
		{"--config over a missing CENTRAL_CONFIG", []string{"--config", other}, map[string]string{"CENTRAL_CONFIG": missing}, nil, "2222", nil},
		{"CENTRAL_CONFIG missing", nil, map[string]string{"CENTRAL_CONFIG": missing}, []string{missing}, "", nil},
		{"--config missing", []string{"--config", missing}, nil, []string{missing}, "", nil},
		{"malformed", []string{"--config", malformed}, nil, []string{malformed}, "", nil},
		{"bad value in file", []string{"--config", writeConfig(t, "barrier:\n  clientCount: many\n")}, nil, []string{"barrier.clientCount", "many"}, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
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
			if c.Port != tt.wantPort {
				t.Errorf("port = %s, want %s", c.Port, tt.wantPort)
			}
			got := slices.Sorted(slices.Values(c.UnknownKeys))
			if !slices.Equal(got, tt.wantUnknown) {
				t.Errorf("UnknownKeys = %q, want %q", got, tt.wantUnknown)
			}
		})
	}
}

// TestConfigValidation: each refused value gives an error that names the
// setting (any of the listed names) and shows the refused value.
func TestConfigValidation(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		env   map[string]string
		names []string // the error must contain one of these
		value string   // and this, when not empty
	}{
		{"CLIENT_COUNT=0", nil, map[string]string{"CLIENT_COUNT": "0"}, []string{"CLIENT_COUNT", "clients"}, "0"},
		{"CLIENT_COUNT=-1", nil, map[string]string{"CLIENT_COUNT": "-1"}, []string{"CLIENT_COUNT", "clients"}, "-1"},
		{"--clients=0", []string{"--clients=0"}, nil, []string{"CLIENT_COUNT", "clients"}, "0"},
		// Agency ids are at most 9 digits on the wire: agency 1,000,000,000 could never send.
		{"CLIENT_COUNT beyond the wire's agency ids", nil, map[string]string{"CLIENT_COUNT": "1000000000"}, []string{"CLIENT_COUNT", "clients"}, "1000000000"},
		{"CLIENT_COUNT=2000000000 names the limit", nil, map[string]string{"CLIENT_COUNT": "2000000000"}, []string{"CLIENT_COUNT", "clients"}, "999999999"},
		{"CLIENT_COUNT not a number", nil, map[string]string{"CLIENT_COUNT": "five"}, []string{"environment CLIENT_COUNT="}, "five"},
		{"SERVER_PORT=70000", nil, map[string]string{"SERVER_PORT": "70000"}, []string{"port", "SERVER_PORT"}, "70000"},
		{"SERVER_PORT=65536", nil, map[string]string{"SERVER_PORT": "65536"}, []string{"port", "SERVER_PORT"}, "65536"},
		{"--port=-1", []string{"--port=-1"}, nil, []string{"port", "SERVER_PORT"}, "-1"},
		{"SERVER_PORT not a number", nil, map[string]string{"SERVER_PORT": "http"}, []string{"SERVER_PORT"}, "http"},
		{"TLS without a key", nil, map[string]string{"TLS_CERT": "c.pem", "TLS_CA": "ca.pem"}, []string{"TLS_KEY"}, ""},
		{"no listener", nil, map[string]string{"SERVER_PORT": "off"}, []string{"SERVER_PORT", "listener"}, ""},
		{"ROUNDS=-1", nil, map[string]string{"ROUNDS": "-1"}, []string{"ROUNDS"}, "-1"},
		{"IDLE_TIMEOUT=-1s", nil, map[string]string{"IDLE_TIMEOUT": "-1s"}, []string{"idle", "IDLE_TIMEOUT"}, "-1s"},
		{"IDLE_TIMEOUT=0s", nil, map[string]string{"IDLE_TIMEOUT": "0s"}, []string{"idle", "IDLE_TIMEOUT"}, "0"},
		{"SHUTDOWN_TIMEOUT=0s", nil, map[string]string{"SHUTDOWN_TIMEOUT": "0s"}, []string{"shutdown", "SHUTDOWN_TIMEOUT"}, "0"},
		{"--shutdown-timeout=-5s", []string{"--shutdown-timeout=-5s"}, nil, []string{"shutdown", "SHUTDOWN_TIMEOUT"}, "-5s"},
		{"IDLE_TIMEOUT without unit", nil, map[string]string{"IDLE_TIMEOUT": "60"}, []string{"environment IDLE_TIMEOUT="}, "60"},
		{"MAX_FRAME_BYTES=0", nil, map[string]string{"MAX_FRAME_BYTES": "0"}, []string{"max frame", "max-frame", "MAX_FRAME_BYTES"}, "0"},
		{"MAX_FRAME_BYTES=10", nil, map[string]string{"MAX_FRAME_BYTES": "10"}, []string{"max frame", "max-frame", "MAX_FRAME_BYTES"}, "10"},
		{"--max-frame=-1", []string{"--max-frame=-1"}, nil, []string{"max frame", "max-frame", "MAX_FRAME_BYTES"}, "-1"},
		// The header is 8 ASCII digits: no payload can be longer than 99,999,999.
		{"MAX_FRAME_BYTES beyond the header", nil, map[string]string{"MAX_FRAME_BYTES": "100000000"}, []string{"max frame", "max-frame", "MAX_FRAME_BYTES"}, "100000000"},
		// The store refuses a batch of more than 4 MiB of rows (store.DefaultMaxGroupBytes),
		// and rows can be three times the payload: at most 1 MiB (MaxFrameLimit).
		{"MAX_FRAME_BYTES beyond the store's batch", nil, map[string]string{"MAX_FRAME_BYTES": "1048577"}, []string{"max frame", "max-frame", "MAX_FRAME_BYTES"}, "1048577"},
		{"MAX_FRAME_BYTES at the old 4 MiB bound", nil, map[string]string{"MAX_FRAME_BYTES": "4194304"}, []string{"max frame", "max-frame", "MAX_FRAME_BYTES"}, "1048576"},
		{"MAX_FRAME_BYTES=99999999 says why", nil, map[string]string{"MAX_FRAME_BYTES": "99999999"}, []string{"store"}, "4194304"},
		{"MAX_CONNECTIONS=0", nil, map[string]string{"MAX_CONNECTIONS": "0"}, []string{"max connections", "max-connections", "MAX_CONNECTIONS"}, "0"},
		{"PPROF_ENABLED not a bool", nil, map[string]string{"PPROF_ENABLED": "sometimes"}, []string{"environment PPROF_ENABLED="}, "sometimes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadConfig(tt.args, envOf(tt.env), io.Discard)
			if err == nil {
				t.Fatal("LoadConfig accepted it")
			}
			msg := err.Error()
			if !slices.ContainsFunc(tt.names, func(n string) bool { return strings.Contains(msg, n) }) {
				t.Errorf("error %q names none of %q", msg, tt.names)
			}
			if tt.value != "" && !strings.Contains(msg, tt.value) {
				t.Errorf("error %q does not show the value %q", msg, tt.value)
			}
		})
	}
}

func TestConfigValidBoundaries(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
	}{
		{"one agency", map[string]string{"CLIENT_COUNT": "1"}},
		{"the wire's largest agency id", map[string]string{"CLIENT_COUNT": "999999999"}},
		{"port 65535", map[string]string{"SERVER_PORT": "65535"}},
		{"frame at its limit", map[string]string{"MAX_FRAME_BYTES": "1048576"}},
		{"frame of the seed's 8 KiB", map[string]string{"MAX_FRAME_BYTES": "8192"}},
		{"one connection", map[string]string{"MAX_CONNECTIONS": "1"}},
		{"1ns timeouts", map[string]string{"IDLE_TIMEOUT": "1ns", "SHUTDOWN_TIMEOUT": "1ns"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := LoadConfig(nil, envOf(tt.env), io.Discard); err != nil {
				t.Errorf("LoadConfig: %v", err)
			}
		})
	}
}

func TestConfigArguments(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		contains string
	}{
		{"positional", []string{"extra"}, "extra"},
		{"positional after flags", []string{"--port", "4000", "serve"}, "serve"},
		{"unknown flag", []string{"--nope"}, "nope"},
		{"flag without its value", []string{"--port"}, "port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadConfig(tt.args, envOf(nil), io.Discard)
			if err == nil {
				t.Fatal("LoadConfig accepted it")
			}
			if !strings.Contains(err.Error(), tt.contains) {
				t.Errorf("error %q does not contain %q", err, tt.contains)
			}
		})
	}
}

// TestConfigEffective: the configuration printed at start lists every
// documented setting, once, with its effective value.
func TestConfigEffective(t *testing.T) {
	c, err := LoadConfig([]string{"--log-level=WARN"}, envOf(map[string]string{"SERVER_PORT": "4000", "CLIENT_COUNT": "3"}), io.Discard)
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
	// The TLS files only work together (TestConfigTLSOnly sets them).
	documented := []string{"tls-port", "tls-cert", "tls-key", "tls-ca"}
	for _, s := range centralSettings {
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
	for f, want := range map[string]string{"port": "4000", "clients": "3", "log-level": "WARN", "idle-timeout": "1m0s"} {
		if got[f] != want {
			t.Errorf("Effective %s = %q, want %q", f, got[f], want)
		}
	}
}

// TestMetricsAddrOff: METRICS_ADDR=off turns the metrics server off (an
// empty variable counts as unset and keeps the default).
func TestMetricsAddrOff(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{map[string]string{"METRICS_ADDR": "off"}, nil, ""},
		{map[string]string{"METRICS_ADDR": ""}, nil, ":9464"},
		{nil, []string{"--metrics-addr="}, ""},
		{nil, []string{"--metrics-addr=off"}, ""},
		{map[string]string{"METRICS_ADDR": "127.0.0.1:9999"}, nil, "127.0.0.1:9999"},
	} {
		c, err := LoadConfig(tc.args, func(k string) string { return tc.env[k] }, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if c.MetricsAddr != tc.want {
			t.Errorf("env %v args %v: metrics address %q, want %q", tc.env, tc.args, c.MetricsAddr, tc.want)
		}
	}
}

// TestConfigTLSOnly: the plaintext listener can be turned off when TLS is
// configured; the TLS listener takes its own port.
func TestConfigTLSOnly(t *testing.T) {
	c, err := LoadConfig(nil, envOf(map[string]string{"SERVER_PORT": "off", "TLS_CERT": "c.pem", "TLS_KEY": "k.pem", "TLS_CA": "ca.pem", "SERVER_HOST": "127.0.0.1"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.Address != "" || c.Server.TLSAddress != "127.0.0.1:12346" || !c.TLSEnabled() {
		t.Errorf("addresses %q (plaintext) and %q (TLS), want none and 127.0.0.1:12346", c.Server.Address, c.Server.TLSAddress)
	}
}
