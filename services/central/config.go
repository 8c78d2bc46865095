package central

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"

	"github.com/loteria/loteria/services/internal/settings"
	"github.com/loteria/loteria/services/internal/store"
	"github.com/loteria/loteria/services/internal/wire"
)

// ProgramConfig is the central program's whole configuration: the server's
// and the process's (store, TLS files, logs, metrics).
type ProgramConfig struct {
	Server      Config
	StorePath   string
	Host        string
	Port        string // a number, or "off" for no plaintext listener
	TLSPort     string // a number, or "off"/"" for no TLS listener
	TLSCert     string
	TLSKey      string
	TLSCA       string
	Backlog     int
	Rounds      int // 0: until stopped
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

// TLSEnabled reports whether the TLS listener is configured.
func (c *ProgramConfig) TLSEnabled() bool { return c.Server.TLSAddress != "" }

// LoadConfig reads the central's configuration: defaults, then the YAML
// file, then the environment (the seed's names), then flags.
func LoadConfig(args []string, getenv func(string) string, out io.Writer) (*ProgramConfig, error) {
	c := &ProgramConfig{
		StorePath:   "./data/bets.csv",
		Port:        strconv.Itoa(DefaultPort),
		TLSPort:     strconv.Itoa(DefaultTLSPort),
		Rounds:      1,
		LogLevel:    "INFO",
		LogFormat:   "tint",
		MetricsAddr: ":9464",
		Server: Config{
			Agencies:          5,
			MaxFrame:          DefaultMaxFrame,
			IdleTimeout:       DefaultIdleTimeout,
			HandshakeTimeout:  DefaultHandshakeTimeout,
			MaxConnections:    DefaultMaxConnections,
			ShutdownTimeout:   DefaultShutdownTimeout,
			StatusLogInterval: DefaultStatusLogInterval,
		},
	}
	s := settings.New("central", out)
	s.Describe("the Lotería Nacional server: takes the agencies' bets over TCP (plaintext and mutual TLS), stores each batch before acknowledging it, holds each round's draw and tells each agency its own winners",
		settings.Subcommand{Name: "healthcheck", Args: "[--url URL]", Summary: "probe a running central's /healthz (exit 0 when healthy)"})
	s.FlagSet().StringVar(&c.ConfigFile, "config", getenv("CENTRAL_CONFIG"), "YAML configuration file (env CENTRAL_CONFIG)")
	s.String(&c.Host, "host", "server.host", "address to listen on (empty: every interface)", "SERVER_HOST")
	s.String(&c.Port, "port", "server.port", "plaintext TCP port for agencies (the seed's protocol, unauthenticated); off: none", "SERVER_PORT")
	s.String(&c.TLSPort, "tls-port", "tls.port", "mutual-TLS port for agencies (used when a certificate is set); off: none", "TLS_PORT")
	s.String(&c.TLSCert, "tls-cert", "tls.cert", "the central's certificate (PEM) for the TLS listener", "TLS_CERT")
	s.String(&c.TLSKey, "tls-key", "tls.key", "the central certificate's private key (PEM)", "TLS_KEY")
	s.String(&c.TLSCA, "tls-ca", "tls.ca", "the CA (PEM) that agencies' client certificates must be signed by", "TLS_CA")
	s.Int(&c.Backlog, "backlog", "server.listenBacklog", "accepted for compatibility with the seed; Go uses the kernel's backlog", "SERVER_LISTEN_BACKLOG")
	s.Int(&c.Server.Agencies, "clients", "barrier.clientCount", "agencies a round's barrier waits for (1..999999999)", "CLIENT_COUNT")
	s.Int(&c.Rounds, "rounds", "rounds.count", "rounds to hold (1: the seed's one-shot run; 0: until stopped)", "ROUNDS")
	s.Duration(&c.Server.RoundCutoff, "round-cutoff", "rounds.cutoff", "continuous mode: close a round's sales this long after it opened (0: off)", "ROUND_CUTOFF")
	s.Duration(&c.Server.BarrierTimeout, "barrier-timeout", "barrier.timeout", "close a round this long after its first END even if agencies are missing (0: off)", "BARRIER_TIMEOUT")
	s.Bool(&c.Server.AllowAnonymousEnd, "allow-anonymous-end", "barrier.allowAnonymousEnd", "count END from a plaintext connection that never named its agency (a seed client with an empty file); unsafe", "ALLOW_ANONYMOUS_END")
	s.String(&c.StorePath, "store", "store.path", "the bets file (seed CSV format); its journal and lock sit beside it", "STORE_PATH")
	s.Int(&c.Server.MaxFrame, "max-frame", "server.maxFrameBytes", "largest frame payload accepted, in bytes (64.."+strconv.Itoa(MaxFrameLimit)+": a batch's rows, up to three times its size, must fit the store's 4 MiB bound on one batch)", "MAX_FRAME_BYTES")
	s.Duration(&c.Server.IdleTimeout, "idle-timeout", "server.idleTimeout", "drop a peer silent this long while a frame is due", "IDLE_TIMEOUT")
	s.Duration(&c.Server.HandshakeTimeout, "handshake-timeout", "server.handshakeTimeout", "bound on the TLS handshake and on the time a connection has to name its agency", "HANDSHAKE_TIMEOUT")
	s.Int(&c.Server.MaxConnections, "max-connections", "server.maxConnections", "connections served at once; at the cap a new one evicts the oldest unnamed one (lowered to fit the file descriptor limit)", "MAX_CONNECTIONS")
	s.Int(&c.Server.MaxConnectionsPerAddress, "max-connections-per-address", "server.maxConnectionsPerAddress", "connections from one IP address (0: no cap; behind NAT all agencies may share one)", "MAX_CONNECTIONS_PER_ADDRESS")
	s.Duration(&c.Server.ShutdownTimeout, "shutdown-timeout", "server.shutdownTimeout", "bound on graceful shutdown", "SHUTDOWN_TIMEOUT")
	s.Duration(&c.Server.StatusLogInterval, "status-log-interval", "barrier.statusLogInterval", "how often a round that has begun finishing logs the agencies it still waits for", "STATUS_LOG_INTERVAL")
	s.String(&c.LogLevel, "log-level", "log.level", "DEBUG, INFO, WARN or ERROR", "LOGGING_LEVEL")
	s.String(&c.LogFormat, "log-format", "log.format", "tint, json or seed", "LOG_FORMAT")
	s.String(&c.MetricsAddr, "metrics-addr", "metrics.address", "metrics, health and /status HTTP address (empty or off: none)", "METRICS_ADDR")
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
	case c.Server.Agencies < 1:
		return nil, fmt.Errorf("CLIENT_COUNT %d: the barrier needs at least 1 agency", c.Server.Agencies)
	case c.Server.Agencies > wire.MaxAgency:
		return nil, fmt.Errorf("CLIENT_COUNT %d: at most %d, the largest agency id the protocol carries (%d digits); agencies above it could never send and the barrier would never close",
			c.Server.Agencies, wire.MaxAgency, wire.AgencyDigits)
	case c.Rounds < 0:
		return nil, fmt.Errorf("ROUNDS %d: want 1 or more, or 0 for until stopped", c.Rounds)
	case c.Server.RoundCutoff < 0 || c.Server.BarrierTimeout < 0:
		return nil, errors.New("ROUND_CUTOFF and BARRIER_TIMEOUT: want a positive duration such as 60s, or 0 for off")
	case c.Server.MaxFrame < 64:
		return nil, fmt.Errorf("MAX_FRAME_BYTES %d: want 64..%d", c.Server.MaxFrame, MaxFrameLimit)
	case c.Server.MaxFrame > MaxFrameLimit:
		return nil, fmt.Errorf("MAX_FRAME_BYTES %d: at most %d: a batch's rows can be three times its size and the store takes at most %d bytes of them in one batch; a larger batch would be refused with store_failed, which agencies retry, so its bets would never be stored",
			c.Server.MaxFrame, MaxFrameLimit, store.DefaultMaxGroupBytes)
	case c.Server.MaxConnections < 1:
		return nil, fmt.Errorf("max connections %d: want at least 1", c.Server.MaxConnections)
	case c.Server.MaxConnectionsPerAddress < 0:
		return nil, fmt.Errorf("max connections per address %d: want 0 (no cap) or more", c.Server.MaxConnectionsPerAddress)
	case c.Server.IdleTimeout <= 0:
		return nil, fmt.Errorf("idle timeout %s: want a positive duration such as 60s", c.Server.IdleTimeout)
	case c.Server.HandshakeTimeout <= 0:
		return nil, fmt.Errorf("handshake timeout %s: want a positive duration such as 10s", c.Server.HandshakeTimeout)
	case c.Server.ShutdownTimeout <= 0:
		return nil, fmt.Errorf("shutdown timeout %s: want a positive duration such as 10s", c.Server.ShutdownTimeout)
	case c.StorePath == "":
		return nil, errors.New("no store path: set STORE_PATH or --store")
	}
	c.Server.Rounds = c.Rounds
	if c.Rounds == 0 {
		c.Server.Rounds = -1
	}
	plain, err := portAddr(c.Host, c.Port, "SERVER_PORT")
	if err != nil {
		return nil, err
	}
	c.Server.Address = plain
	if c.TLSCert != "" || c.TLSKey != "" || c.TLSCA != "" {
		if c.TLSCert == "" || c.TLSKey == "" || c.TLSCA == "" {
			return nil, errors.New("TLS needs all three of TLS_CERT, TLS_KEY and TLS_CA (see docs/TLS.md; bin/certs makes them)")
		}
		if c.Server.TLSAddress, err = portAddr(c.Host, c.TLSPort, "TLS_PORT"); err != nil {
			return nil, err
		}
	}
	if c.Server.Address == "" && c.Server.TLSAddress == "" {
		return nil, errors.New("no listener: SERVER_PORT is off and no TLS certificate is set")
	}
	if c.MetricsAddr == "off" {
		c.MetricsAddr = "" // an empty environment variable counts as unset
	}
	c.Server.SeedLog = strings.EqualFold(c.LogFormat, "seed")
	return c, nil
}

// portAddr is host:port for a port setting, or "" when it is off.
func portAddr(host, port, name string) (string, error) {
	if port == "" || strings.EqualFold(port, "off") {
		return "", nil
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return "", fmt.Errorf("%s %q: want a port 0..65535, or off", name, port)
	}
	return net.JoinHostPort(host, strconv.Itoa(n)), nil
}
