package agency

import (
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/loteria/loteria/services/internal/settings"
)

// ProgramConfig is the agency program's whole configuration.
type ProgramConfig struct {
	ID             int
	ServerAddress  string
	DataPath       string
	BatchMaxAmount int
	InFlight       int
	Protocol       string
	Timeout        time.Duration
	WinnersTimeout time.Duration
	DialAttempts   int
	LogLevel       string
	LogFormat      string
	MetricsAddr    string
	Linger         time.Duration

	ConfigFile  string
	UnknownKeys []string
	set         *settings.Set
}

// Effective lists the settings as key/value pairs for one log line.
func (c *ProgramConfig) Effective() []any { return c.set.Effective() }

// Options are the client options the configuration says.
func (c *ProgramConfig) Options() Options {
	return Options{
		Agency:         c.ID,
		Address:        c.ServerAddress,
		MaxBets:        c.BatchMaxAmount,
		InFlight:       c.InFlight,
		Protocol:       c.Protocol,
		Timeout:        c.Timeout,
		WinnersTimeout: c.WinnersTimeout,
		DialAttempts:   c.DialAttempts,
	}
}

// LoadConfig reads the agency's configuration: defaults, then config.yaml
// (or --config / CLI_CONFIG), then the seed's CLI_* environment, then flags.
func LoadConfig(args []string, getenv func(string) string, out io.Writer) (*ProgramConfig, error) {
	c := &ProgramConfig{
		ServerAddress:  "server:12345",
		BatchMaxAmount: 100,
		InFlight:       64,
		Protocol:       ProtocolLoteria,
		Timeout:        30 * time.Second,
		WinnersTimeout: 10 * time.Minute,
		DialAttempts:   10,
		LogLevel:       "INFO",
		LogFormat:      "tint",
	}
	s := settings.New("agency", out)
	defaultConfig, required := "config.yaml", false
	if v := getenv("CLI_CONFIG"); v != "" {
		defaultConfig, required = v, true
	}
	s.FlagSet().StringVar(&c.ConfigFile, "config", defaultConfig, "YAML configuration file (env CLI_CONFIG; config.yaml is optional)")
	s.Int(&c.ID, "id", "id", "agency number, 1..N", "CLI_ID")
	s.String(&c.ServerAddress, "server", "server.address", "central address host:port", "CLI_SERVER_ADDRESS")
	s.String(&c.DataPath, "data", "data.path", "bets file (default .data/agency-<id>.csv)", "CLI_DATA_PATH")
	s.Int(&c.BatchMaxAmount, "batch-max", "batch.maxAmount", "bets per batch at most (frames never exceed 8 KiB)", "CLI_BATCH_MAXAMOUNT")
	s.Int(&c.InFlight, "in-flight", "batch.inFlight", "batches sent before waiting for acks (1: stop-and-wait)", "CLI_BATCH_INFLIGHT")
	s.String(&c.Protocol, "protocol", "protocol", "loteria (with extensions) or seed (none)", "CLI_PROTOCOL")
	s.Duration(&c.Timeout, "timeout", "server.timeout", "dial, write and per-ack timeout", "CLI_TIMEOUT")
	s.Duration(&c.WinnersTimeout, "winners-timeout", "server.winnersTimeout", "wait for the draw at most this long", "CLI_WINNERS_TIMEOUT")
	s.Int(&c.DialAttempts, "dial-attempts", "server.dialAttempts", "connection attempts before giving up", "CLI_DIAL_ATTEMPTS")
	s.String(&c.LogLevel, "log-level", "log.level", "DEBUG, INFO, WARN or ERROR", "CLI_LOG_LEVEL")
	s.String(&c.LogFormat, "log-format", "log.format", "tint, json or seed", "LOG_FORMAT")
	s.String(&c.MetricsAddr, "metrics-addr", "metrics.address", "metrics and health HTTP address (empty or off: none)", "METRICS_ADDR")
	s.Duration(&c.Linger, "linger", "metrics.linger", "keep /metrics up this long after the winners", "CLI_LINGER")
	if err := s.Parse(args, getenv, func() (string, bool) {
		// config.yaml in the working directory is optional; a file named
		// by flag or CLI_CONFIG must exist.
		s.FlagSet().Visit(func(f *flag.Flag) { required = required || f.Name == "config" })
		return c.ConfigFile, required
	}); err != nil {
		return nil, err
	}
	c.set = s
	c.UnknownKeys = s.UnknownKeys()
	if s.FlagSet().NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", s.FlagSet().Args())
	}
	if c.ID < 1 {
		return nil, fmt.Errorf("agency id missing or below 1: set --id, CLI_ID or id in %s", c.ConfigFile)
	}
	if c.DataPath == "" {
		c.DataPath = fmt.Sprintf(".data/agency-%d.csv", c.ID)
	}
	if c.Protocol == "" {
		c.Protocol = ProtocolLoteria
	}
	if c.MetricsAddr == "off" {
		c.MetricsAddr = "" // an empty environment variable counts as unset
	}
	switch {
	case c.InFlight < 1:
		return nil, fmt.Errorf("batch.inFlight %d: want 1 or more", c.InFlight)
	case c.Timeout <= 0:
		return nil, fmt.Errorf("timeout %s: want a positive duration such as 30s", c.Timeout)
	case c.WinnersTimeout <= 0:
		return nil, fmt.Errorf("winners timeout %s: want a positive duration such as 10m", c.WinnersTimeout)
	case c.DialAttempts < 1:
		return nil, fmt.Errorf("dial attempts %d: want 1 or more", c.DialAttempts)
	}
	if err := (&Options{Agency: c.ID, MaxBets: c.BatchMaxAmount, Protocol: c.Protocol}).defaults(); err != nil {
		return nil, err
	}
	return c, nil
}
