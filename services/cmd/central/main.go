// Command central is the Lotería Nacional server. See docs/CONFIGURATION.md
// for its settings; `central healthcheck` probes a running one.
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
	"syscall"
	"time"

	"github.com/loteria/loteria/observability"
	"github.com/loteria/loteria/services/central"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "healthcheck" {
		return observability.HealthcheckCommand(ctx, "central", "http://127.0.0.1:9464/healthz", args[1:], stderr)
	}
	cfg, err := central.LoadConfig(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "central:", err)
		return 2
	}
	log, err := observability.NewLogger(stderr, observability.LogOptions{Level: cfg.LogLevel, Format: cfg.LogFormat})
	if err != nil {
		fmt.Fprintln(stderr, "central:", err)
		return 2
	}
	log.Info("config", cfg.Effective()...)
	if len(cfg.UnknownKeys) > 0 {
		log.Warn("config file has keys the central does not use", "keys", cfg.UnknownKeys)
	}
	if err := serve(ctx, cfg, log); err != nil {
		log.Error("central stopped", "err", err)
		return 1
	}
	log.Info("central stopped")
	return 0
}

func serve(ctx context.Context, cfg *central.ProgramConfig, log *slog.Logger) error {
	tp, err := observability.NewTracerProvider(ctx, "loteria-central")
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := tp.Shutdown(sctx); err != nil {
			log.Warn("flush traces", "err", err)
		} else {
			log.Info("closed", "resource", "tracer")
		}
	}()
	reg := observability.NewRegistry("central")
	srv, err := central.New(cfg.Server, central.Deps{
		Logger:     log,
		Registerer: reg,
		Tracer:     tp.Tracer("github.com/loteria/loteria/services/central"),
	})
	if err != nil {
		return err
	}
	if cfg.MetricsAddr != "" {
		hs := observability.NewHTTPServer(cfg.MetricsAddr, reg, observability.HTTPOptions{
			Logger: log, Pprof: cfg.Pprof, Ready: srv.Ready,
		})
		if err := hs.Start(); err != nil {
			srv.Store().Close()
			return err
		}
		log.Info("metrics listening", "address", hs.Addr(), "pprof", cfg.Pprof)
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			hs.Shutdown(sctx)
			log.Info("closed", "resource", "metrics server")
		}()
	}
	return srv.Run(ctx)
}
