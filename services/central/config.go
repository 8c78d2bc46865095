package central

import (
	"fmt"
	"io"
	"net"
	"strconv"

	"github.com/loteria/loteria/services/internal/settings"
)

// ProgramConfig is the central program's whole configuration: the server's
// and the process's (logs, metrics).
type ProgramConfig struct {
	Server      Config
	Host        string
	Port        int
	Backlog     int
	LogLevel    string
	LogFormat   string
	MetricsAddr string
	Pprof       bool

	ConfigFile  string
	UnknownKeys []string
	set         *settings.Set
}

// Effective lists the settings as key/value pairs for one log line.
func (c *ProgramConfig) Effective() []any { return c.set.Effective() }

// LoadConfig reads the central's configuration: defaults, then the YAML
// file, then the environment (the seed's names), then flags.
func LoadConfig(args []string, getenv func(string) string, out io.Writer) (*ProgramConfig, error) {
	c := &ProgramConfig{
		Port:        DefaultPort,
		LogLevel:    "INFO",
		LogFormat:   "tint",
		MetricsAddr: ":9464",
		Server: Config{
			Agencies:        5,
			StorePath:       "./data/bets.csv",
			MaxFrame:        DefaultMaxFrame,
			IdleTimeout:     DefaultIdleTimeout,
			MaxConnections:  DefaultMaxConnections,
			ShutdownTimeout: DefaultShutdownTimeout,
		},
	}
	s := settings.New("central", out)
	s.FlagSet().StringVar(&c.ConfigFile, "config", getenv("CENTRAL_CONFIG"), "YAML configuration file (env CENTRAL_CONFIG)")
	s.String(&c.Host, "host", "server.host", "address to listen on (empty: every interface)", "SERVER_HOST")
	s.Int(&c.Port, "port", "server.port", "TCP port for agencies", "SERVER_PORT")
	s.Int(&c.Backlog, "backlog", "server.listenBacklog", "accepted for compatibility with the seed; Go uses the kernel's backlog", "SERVER_LISTEN_BACKLOG")
	s.Int(&c.Server.Agencies, "clients", "barrier.clientCount", "agencies the barrier waits for (N >= 1)", "CLIENT_COUNT")
	s.String(&c.Server.StorePath, "store", "store.path", "the bets file (seed CSV format)", "STORE_PATH")
	s.Int(&c.Server.MaxFrame, "max-frame", "server.maxFrameBytes", "largest frame payload accepted, in bytes", "MAX_FRAME_BYTES")
	s.Duration(&c.Server.IdleTimeout, "idle-timeout", "server.idleTimeout", "drop a peer silent this long while a frame is due", "IDLE_TIMEOUT")
	s.Int(&c.Server.MaxConnections, "max-connections", "server.maxConnections", "connections served at once", "MAX_CONNECTIONS")
	s.Duration(&c.Server.ShutdownTimeout, "shutdown-timeout", "server.shutdownTimeout", "bound on graceful shutdown", "SHUTDOWN_TIMEOUT")
	s.String(&c.LogLevel, "log-level", "log.level", "DEBUG, INFO, WARN or ERROR", "LOGGING_LEVEL")
	s.String(&c.LogFormat, "log-format", "log.format", "tint, json or seed", "LOG_FORMAT")
	s.String(&c.MetricsAddr, "metrics-addr", "metrics.address", "metrics and health HTTP address (empty or off: none)", "METRICS_ADDR")
	s.Bool(&c.Pprof, "pprof", "metrics.pprof", "serve /debug/pprof/ on the metrics address", "PPROF_ENABLED")
	if err := s.Parse(args, getenv, func() (string, bool) { return c.ConfigFile, true }); err != nil {
		return nil, err
	}
	c.set = s
	c.UnknownKeys = s.UnknownKeys()
	if s.FlagSet().NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", s.FlagSet().Args())
	}
	switch {
	case c.Port < 0 || c.Port > 65535:
		return nil, fmt.Errorf("port %d: want 0..65535", c.Port)
	case c.Server.Agencies < 1:
		return nil, fmt.Errorf("CLIENT_COUNT %d: the barrier needs at least 1 agency", c.Server.Agencies)
	case c.Server.MaxFrame < 64 || c.Server.MaxFrame > 99_999_999:
		return nil, fmt.Errorf("max frame %d bytes: want 64..99999999", c.Server.MaxFrame)
	case c.Server.MaxConnections < 1:
		return nil, fmt.Errorf("max connections %d: want at least 1", c.Server.MaxConnections)
	case c.Server.IdleTimeout <= 0:
		return nil, fmt.Errorf("idle timeout %s: want a positive duration such as 60s", c.Server.IdleTimeout)
	case c.Server.ShutdownTimeout <= 0:
		return nil, fmt.Errorf("shutdown timeout %s: want a positive duration such as 10s", c.Server.ShutdownTimeout)
	}
	c.Server.Address = net.JoinHostPort(c.Host, strconv.Itoa(c.Port))
	if c.MetricsAddr == "off" {
		c.MetricsAddr = "" // an empty environment variable counts as unset
	}
	return c, nil
}
