// Command agency sends an agency's bets to the central and prints its
// winners. See docs/CONFIGURATION.md for its settings; `agency healthcheck`
// probes a running one's metrics endpoint.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"

	"github.com/loteria/loteria/observability"
	"github.com/loteria/loteria/services/agency"
	"github.com/loteria/loteria/services/internal/betfile"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
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
	log, err := observability.NewLogger(stderr, observability.LogOptions{Level: cfg.LogLevel, Format: cfg.LogFormat})
	if err != nil {
		fmt.Fprintln(stderr, "agency:", err)
		return 2
	}
	log = log.With("agency", cfg.ID)
	log.Info("config", cfg.Effective()...)
	if len(cfg.UnknownKeys) > 0 {
		log.Debug("config file has keys the agency does not use", "keys", cfg.UnknownKeys)
	}
	if err := send(ctx, cfg, log, stdout); err != nil {
		if ctx.Err() != nil {
			log.Warn("interrupted: connection and file closed", "err", err)
		} else {
			log.Error("agency failed", "err", err)
		}
		return 1
	}
	return 0
}

// send runs the agency and prints its winners as soon as they arrive; the
// deferred linger (keeping /metrics up) comes after.
func send(ctx context.Context, cfg *agency.ProgramConfig, log *slog.Logger, stdout io.Writer) error {
	tp, err := observability.NewTracerProvider(ctx, "loteria-agency", attribute.Int("loteria.agency.id", cfg.ID))
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

	var reg prometheus.Registerer
	var metrics *agency.Metrics
	if cfg.MetricsAddr != "" {
		r := observability.NewRegistry("agency")
		reg = prometheus.WrapRegistererWith(prometheus.Labels{"agency": strconv.Itoa(cfg.ID)}, r)
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
		if n, err := betfile.CountLines(cfg.DataPath); err == nil {
			metrics.BetsInFile.Set(float64(n))
		}
	}

	f, err := betfile.Open(cfg.DataPath, cfg.ID)
	if err != nil {
		return err
	}
	defer func() {
		f.Close()
		log.Debug("closed", "resource", "bets file", "path", cfg.DataPath)
	}()
	client, err := agency.NewClient(cfg.Options(), agency.Deps{
		Logger:  log,
		Metrics: metrics,
		Tracer:  tp.Tracer("github.com/loteria/loteria/services/agency"),
	})
	if err != nil {
		return err
	}
	res, err := client.Run(ctx, f)
	if err != nil {
		return err
	}
	log.Info("consulta_ganadores", "result", "success", "cant_ganadores", len(res.Winners),
		"bets", res.Bets, "batches", res.Batches, "barrier_wait", res.BarrierWait)
	fmt.Fprintf(stdout, "agency %d winners (%d): %s\n", cfg.ID, len(res.Winners), strings.Join(res.Winners, ";"))
	return nil
}
