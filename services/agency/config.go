package agency

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"strconv"
	"time"

	"github.com/loteria/loteria/services/internal/settings"
	"github.com/loteria/loteria/services/internal/wire"
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
	RetryBase      time.Duration
	RetryMax       time.Duration
	RetryBudget    time.Duration
	Rate           float64
	Rounds         int    // 0: until stopped
	RoundData      string // RoundDataFile or RoundDataGenerate
	BetsPerRound   int    // with RoundDataGenerate
	DataSeed       int    // with RoundDataGenerate
	LogLevel       string
	LogFormat      string
	MetricsAddr    string
	Linger         time.Duration
	// TLS: the agency's certificate and key, the CA the central's
	// certificate must chain to, and the name to check it against.
	TLSCert, TLSKey, TLSCA, TLSServerName string

	ConfigFile  string
	UnknownKeys []string
	set         *settings.Set
}

// Where each round's bets come from.
const (
	RoundDataFile     = "file"     // the data file, again every round
	RoundDataGenerate = "generate" // fresh deterministic bets per round (services/internal/datagen)
)

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
		RetryBase:      c.RetryBase,
		RetryMax:       c.RetryMax,
		RetryBudget:    c.RetryBudget,
		Rate:           c.Rate,
		Rounds:         c.rounds(),
	}
}

func (c *ProgramConfig) rounds() int {
	if c.Rounds == 0 {
		return UntilStopped
	}
	return c.Rounds
}

// Stream opens the agency's bets as the configuration says: its data file
// every round, or generated bets.
func (c *ProgramConfig) Stream() (Stream, error) {
	if c.RoundData == RoundDataGenerate {
		return NewGeneratedStream(c.ID, uint64(c.DataSeed), int64(c.BetsPerRound))
	}
	return OpenFileStream(c.DataPath, c.ID)
}

// LoadConfig reads the agency's configuration: defaults, then config.yaml
// (or --config / CLI_CONFIG), then the seed's CLI_* environment, then flags.
func LoadConfig(args []string, getenv func(string) string, out io.Writer) (*ProgramConfig, error) {
	c := &ProgramConfig{
		ServerAddress:  "server:12345",
		BatchMaxAmount: 100,
		InFlight:       1024,
		Protocol:       ProtocolLoteria,
		Timeout:        30 * time.Second,
		WinnersTimeout: 10 * time.Minute,
		RetryBase:      100 * time.Millisecond,
		RetryMax:       10 * time.Second,
		RetryBudget:    5 * time.Minute,
		Rounds:         1,
		RoundData:      RoundDataFile,
		BetsPerRound:   1000,
		DataSeed:       1,
		LogLevel:       "INFO",
		LogFormat:      "tint",
	}
	s := settings.New("agency", out)
	s.Describe("a Lotería Nacional agency: sends its bets to the central round after round, resuming by itself after failures, and prints each round's winners",
		settings.Subcommand{Name: "healthcheck", Args: "[--url URL]", Summary: "probe a running agency's metrics endpoint (exit 0 when healthy)"})
	defaultConfig, required := "config.yaml", false
	if v := getenv("CLI_CONFIG"); v != "" {
		defaultConfig, required = v, true
	}
	s.FlagSet().StringVar(&c.ConfigFile, "config", defaultConfig, "YAML configuration file (env CLI_CONFIG; config.yaml is optional)")
	s.Int(&c.ID, "id", "id", "agency number, 1..N (N at most 999999999)", "CLI_ID")
	s.String(&c.ServerAddress, "server", "server.address", "central address host:port (port 1..65535)", "CLI_SERVER_ADDRESS")
	s.String(&c.DataPath, "data", "data.path", "bets file (default .data/agency-<id>.csv)", "CLI_DATA_PATH")
	s.Int(&c.BatchMaxAmount, "batch-max", "batch.maxAmount", "bets per batch at most (frames never exceed 8 KiB)", "CLI_BATCH_MAXAMOUNT")
	s.Int(&c.InFlight, "in-flight", "batch.inFlight", "batches sent before waiting for acks (1: stop-and-wait)", "CLI_BATCH_INFLIGHT")
	s.String(&c.Protocol, "protocol", "protocol", "loteria (with extensions) or seed (none)", "CLI_PROTOCOL")
	s.Duration(&c.Timeout, "timeout", "server.timeout", "dial, write and per-ack timeout", "CLI_TIMEOUT")
	s.Duration(&c.WinnersTimeout, "winners-timeout", "server.winnersTimeout", "wait for the draw at most this long", "CLI_WINNERS_TIMEOUT")
	s.Int(&c.DialAttempts, "dial-attempts", "server.dialAttempts", "also give up after this many attempts in a row without progress (0: only the retry budget decides)", "CLI_DIAL_ATTEMPTS")
	s.Duration(&c.RetryBase, "retry-base", "server.retryBase", "first reconnect waits up to this long (doubling, with full jitter)", "CLI_RETRY_BASE")
	s.Duration(&c.RetryMax, "retry-max", "server.retryMax", "reconnects wait up to this long at most", "CLI_RETRY_MAX")
	s.Duration(&c.RetryBudget, "retry-budget", "server.retryBudget", "give up after failing this long without progress (no ack, no winners)", "CLI_RETRY_BUDGET")
	s.Add(settings.Setting{Flag: "rate", Env: []string{"CLI_SEND_RATE"}, Key: "batch.rate", Usage: "send at most this many bets per second (0: as fast as acks allow)", Value: (*rateValue)(&c.Rate)})
	s.Int(&c.Rounds, "rounds", "rounds.count", "rounds to take part in, one chunk of bets each (0: until stopped)", "CLI_ROUNDS")
	s.String(&c.RoundData, "round-data", "rounds.data", "each round's bets: file (the data file again) or generate (fresh generated bets)", "CLI_ROUND_DATA")
	s.Int(&c.BetsPerRound, "bets-per-round", "rounds.bets", "with --round-data generate: bets per round", "CLI_BETS_PER_ROUND")
	s.Int(&c.DataSeed, "data-seed", "rounds.seed", "with --round-data generate: the generator's seed (round 1 is what gendata --seed writes)", "CLI_DATA_SEED")
	s.String(&c.LogLevel, "log-level", "log.level", "DEBUG, INFO, WARN or ERROR", "CLI_LOG_LEVEL")
	s.String(&c.LogFormat, "log-format", "log.format", "tint, json or seed", "LOG_FORMAT")
	s.String(&c.MetricsAddr, "metrics-addr", "metrics.address", "metrics and health HTTP address (empty or off: none)", "METRICS_ADDR")
	s.Duration(&c.Linger, "linger", "metrics.linger", "keep /metrics up this long after the winners", "CLI_LINGER")
	s.String(&c.TLSCert, "tls-cert", "tls.cert", "the agency's certificate (PEM): connect over mutual TLS; its URI SAN names the agency", "CLI_TLS_CERT")
	s.String(&c.TLSKey, "tls-key", "tls.key", "the certificate's private key (PEM)", "CLI_TLS_KEY")
	s.String(&c.TLSCA, "tls-ca", "tls.ca", "the CA (PEM) the central's certificate must chain to", "CLI_TLS_CA")
	s.String(&c.TLSServerName, "tls-server-name", "tls.serverName", "the name to check the central's certificate against (default: the host of --server)", "CLI_TLS_SERVER_NAME")
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
	if c.TLSCert != "" || c.TLSKey != "" || c.TLSCA != "" {
		if c.TLSCert == "" || c.TLSKey == "" || c.TLSCA == "" {
			return nil, errors.New("TLS needs all three of CLI_TLS_CERT, CLI_TLS_KEY and CLI_TLS_CA (see docs/TLS.md; bin/certs makes them)")
		}
	} else if c.ID < 1 {
		// Under TLS the id may come from the certificate (the program
		// reads it there).
		return nil, fmt.Errorf("agency id missing or below 1: set --id, CLI_ID or id in %s", c.ConfigFile)
	}
	if c.ID > wire.MaxAgency {
		return nil, fmt.Errorf("agency id %d: at most %d, the largest agency id the protocol carries (%d digits); set --id, CLI_ID or id to the agency's number 1..N", c.ID, wire.MaxAgency, wire.AgencyDigits)
	}
	if err := checkServerAddress(c.ServerAddress); err != nil {
		return nil, err
	}
	if c.DataPath == "" && c.ID >= 1 {
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
	case c.DialAttempts < 0:
		return nil, fmt.Errorf("dial attempts %d: want 0 (no limit) or more", c.DialAttempts)
	case c.RetryBase <= 0:
		return nil, fmt.Errorf("retry base %s: want a positive duration such as 100ms", c.RetryBase)
	case c.RetryMax < c.RetryBase:
		return nil, fmt.Errorf("retry max %s: want a duration of at least the retry base %s", c.RetryMax, c.RetryBase)
	case c.RetryBudget <= 0:
		return nil, fmt.Errorf("retry budget %s: want a positive duration such as 5m", c.RetryBudget)
	case c.Rounds < 0:
		return nil, fmt.Errorf("rounds %d: want 1 or more, or 0 for until stopped", c.Rounds)
	case c.RoundData != RoundDataFile && c.RoundData != RoundDataGenerate:
		return nil, fmt.Errorf("round data %q: want %q or %q", c.RoundData, RoundDataFile, RoundDataGenerate)
	case c.RoundData == RoundDataGenerate && c.BetsPerRound < 0:
		return nil, fmt.Errorf("bets per round %d: want 0 or more", c.BetsPerRound)
	case c.DataSeed < 0:
		return nil, fmt.Errorf("data seed %d: want 0 or more", c.DataSeed)
	}
	if c.ID >= 1 {
		opts := c.Options()
		if err := opts.defaults(); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// checkServerAddress refuses a central address that no dial can use, at
// start: dialling it failed the same way on every attempt, retried with
// backoff for the whole retry budget (5 minutes by default).
func checkServerAddress(addr string) error {
	const want = "want host:port, such as 127.0.0.1:12345 (set --server, CLI_SERVER_ADDRESS or server.address)"
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		why := err.Error()
		if ae, ok := errors.AsType[*net.AddrError](err); ok {
			why = ae.Err // without the address, which the message quotes once
		}
		return fmt.Errorf("server address %q: %s; %s", addr, why, want)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("server address %q: port %q is not a number 1..65535; %s", addr, port, want)
	}
	return nil
}

// SetID sets the agency id read from its certificate (when --id was not
// given), with the data path that follows from it.
func (c *ProgramConfig) SetID(id int) {
	c.ID = id
	if c.DataPath == "" {
		c.DataPath = fmt.Sprintf(".data/agency-%d.csv", id)
	}
}

// TLSEnabled reports whether the agency connects over mutual TLS.
func (c *ProgramConfig) TLSEnabled() bool { return c.TLSCert != "" }

// rateValue is a bets-per-second setting: a non-negative decimal number.
type rateValue float64

func (v *rateValue) Set(s string) error {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
		return fmt.Errorf("%q is not a rate in bets per second (a number, 0 for off)", s)
	}
	*v = rateValue(f)
	return nil
}

func (v *rateValue) String() string { return strconv.FormatFloat(float64(*v), 'g', -1, 64) }
