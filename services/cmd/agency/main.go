// Command agency sends an agency's bets to the central, round after round,
// resuming by itself after failures, and prints its winners of each round
// on stdout:
//
//	agency <id> round <r> winners (<k>): <dni;dni;...>   (or "none")
//
// Exit status: 0 when every round's winners arrived and the central
// refused no bet; 1 on failure or refused bets; 2 on a bad configuration.
// See docs/CONFIGURATION.md for its settings; `agency healthcheck` probes a
// running one's metrics endpoint.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"

	"github.com/loteria/loteria/observability"
	"github.com/loteria/loteria/services/agency"
	"github.com/loteria/loteria/services/internal/tlsconf"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, runtime.GOMAXPROCS, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the program; setProcs is runtime.GOMAXPROCS (a test records the
// call instead).
func run(ctx context.Context, args []string, getenv func(string) string, setProcs func(int) int, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "healthcheck" {
		return observability.HealthcheckCommand(ctx, "agency", "http://127.0.0.1:9465/healthz", args[1:], stderr)
	}
	cfg, err := agency.LoadConfig(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "agency:", err)
		return 2
	}
	base, err := observability.NewLogger(stderr, observability.LogOptions{Level: cfg.LogLevel, Format: cfg.LogFormat})
	if err != nil {
		fmt.Fprintln(stderr, "agency:", err)
		return 2
	}
	var tlsConfig *tls.Config
	if cfg.TLSEnabled() {
		if tlsConfig, err = clientTLS(cfg); err != nil {
			fmt.Fprintln(stderr, "agency:", err)
			return 2
		}
	}
	log := base.With("agency", cfg.ID)
	log.Info("config", cfg.Effective()...)
	if n := procs(cfg.InFlight, getenv); n > 0 {
		setProcs(n)
		log.Debug("running on one P: with one batch in flight, each step waits for the one before", "gomaxprocs", n)
	}
	if len(cfg.UnknownKeys) > 0 {
		log.Debug("config file has keys the agency does not use", "keys", cfg.UnknownKeys)
	}
	err = send(ctx, cfg, tlsConfig, base, log, stdout)
	var rejected *agency.RejectedError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &rejected):
		log.Error("finished, but the central refused bets", "err", err, "rejected_bets", rejected.Bets)
	case ctx.Err() != nil:
		log.Warn("interrupted: connection and file closed", "err", err)
	default:
		log.Error("agency failed", "err", err)
	}
	return 1
}

// procs is the GOMAXPROCS the agency sets, or 0 to leave the runtime's.
// With one batch in flight (the seed's stop-and-wait) every step waits for
// the one before: the sender for the ack the reader takes, the reader for
// the frame the sender writes. A second P only moves that hand-off between
// threads, each a futex wake-up: five such agencies on two cores used 28%
// less CPU with one P each (0.68 -> 0.49 s), the official run at
// batch.maxAmount 10 took 3-7% less time, 22% less against a central that
// does not sync (docs/BENCHMARKS.md, section 1, 13:06 and 13:08 UTC). A
// pipelining agency keeps the runtime's choice (no difference measured),
// and so does one whose GOMAXPROCS the environment sets.
func procs(inFlight int, getenv func(string) string) int {
	if inFlight == 1 && getenv("GOMAXPROCS") == "" {
		return 1
	}
	return 0
}

// send runs the agency and prints each round's winners as soon as they
// arrive; the deferred linger (keeping /metrics up) comes after. base is
// the logger without the agency attribute: the seed's consulta_ganadores
// line carries nothing after its count.
func send(ctx context.Context, cfg *agency.ProgramConfig, tlsConfig *tls.Config, base, log *slog.Logger, stdout io.Writer) error {
	// The registry comes first: the tracer provider registers the dropped-spans counter in it
	// (LoteriaSpansDropped, the Spans dropped panel), with the agency label like the rest.
	var (
		r   *prometheus.Registry
		reg prometheus.Registerer
	)
	if cfg.MetricsAddr != "" {
		r = observability.NewRegistry("agency")
		reg = prometheus.WrapRegistererWith(prometheus.Labels{"agency": strconv.Itoa(cfg.ID)}, r)
	}
	tp, err := observability.NewTracerProviderWith(ctx, observability.TracerOptions{
		Service:    "loteria-agency",
		Attributes: []attribute.KeyValue{attribute.Int("loteria.agency.id", cfg.ID)},
		Registerer: reg,
	})
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := tp.Shutdown(sctx); err != nil {
			log.Warn("flush traces", "err", err)
		}
	}()

	var metrics *agency.Metrics
	if r != nil {
		metrics = agency.NewMetrics(reg)
		hs := observability.NewHTTPServer(cfg.MetricsAddr, r, observability.HTTPOptions{Logger: log})
		if err := hs.Start(); err != nil {
			return err
		}
		log.Info("metrics listening", "address", hs.Addr())
		defer func() {
			if cfg.Linger > 0 {
				log.Info("lingering so the last scrape sees the final counters", "linger", cfg.Linger)
				t := time.NewTimer(cfg.Linger)
				select {
				case <-t.C:
				case <-ctx.Done():
					t.Stop()
				}
			}
			sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			hs.Shutdown(sctx)
		}()
	}

	stream, err := cfg.Stream()
	if err != nil {
		return err
	}
	opts := cfg.Options()
	opts.TLS = tlsConfig
	client, err := agency.NewClient(opts, agency.Deps{
		Logger:  log,
		Metrics: metrics,
		Tracer:  tp.Tracer("github.com/loteria/loteria/services/agency"),
		OnWinners: func(w agency.RoundWinners) {
			base.Info("consulta_ganadores", "result", "success", "cant_ganadores", len(w.Winners))
			log.Info("round winners", "round", w.Round, "number", w.Number, "winners", len(w.Winners))
			fmt.Fprintln(stdout, winnersLine(cfg.ID, w))
		},
	})
	if err != nil {
		return err
	}
	res, err := client.Run(ctx, stream)
	if err == nil || errors.Is(err, agency.ErrRejected) {
		log.Info("done", "rounds", res.RoundsDone, "bets", res.Bets, "batches", res.Batches, "resumed_at", res.Resumed,
			"barrier_wait", res.BarrierWait)
	}
	return err
}

// clientTLS loads the agency's certificate: the agency id is the one it
// names (so --id may be left out); an --id that differs is refused at
// start rather than by the central.
func clientTLS(cfg *agency.ProgramConfig) (*tls.Config, error) {
	tc, err := tlsconf.ClientConfig(cfg.TLSCert, cfg.TLSKey, cfg.TLSCA, cfg.TLSServerName)
	if err != nil {
		return nil, err
	}
	id, err := tlsconf.AgencyID(tc.Certificates[0].Leaf)
	if err != nil {
		return nil, fmt.Errorf("certificate %s: %w", cfg.TLSCert, err)
	}
	switch {
	case cfg.ID == 0:
		cfg.SetID(id)
	case cfg.ID != id:
		return nil, fmt.Errorf("--id %d but the certificate %s is agency %d's: the central would refuse every batch", cfg.ID, cfg.TLSCert, id)
	}
	return tc, nil
}

// winnersLine is what the agency prints on stdout for each round.
func winnersLine(id int, w agency.RoundWinners) string {
	list := "none"
	if len(w.Winners) > 0 {
		list = strings.Join(w.Winners, ";")
	}
	return fmt.Sprintf("agency %d round %d winners (%d): %s", id, w.Round, len(w.Winners), list)
}
