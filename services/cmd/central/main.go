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
	"sync/atomic"
	"syscall"
	"time"

	"github.com/loteria/loteria/observability"
	"github.com/loteria/loteria/services/central"
	"github.com/loteria/loteria/services/internal/store"
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

// serve binds every port before it touches the store, so a central that
// cannot start (port in use, bad certificate) changes no byte of it; then
// it opens the store (taking its lock and recovering it), serves until ctx
// ends, and closes the store. A store that failed makes it return an
// error, so the process exits non-zero.
func serve(ctx context.Context, cfg *central.ProgramConfig, log *slog.Logger) (err error) {
	if cfg.TLSEnabled() {
		if err := configureTLS(cfg); err != nil {
			return err
		}
	}
	ln, err := central.Listen(cfg.Server)
	if err != nil {
		return err
	}
	defer ln.Close()

	reg := observability.NewRegistry("central")
	tp, err := observability.NewTracerProviderWith(ctx, observability.TracerOptions{Service: "loteria-central", Registerer: reg})
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

	// The metrics server comes up before the store, answering /readyz 503
	// while the store recovers.
	var srv atomic.Pointer[central.Server]
	ready := func() error {
		if s := srv.Load(); s != nil {
			return s.Ready()
		}
		return errors.New("opening the store")
	}
	status := central.StatusRoutes(srv.Load)
	if cfg.MetricsAddr != "" {
		hs := observability.NewHTTPServer(cfg.MetricsAddr, reg, observability.HTTPOptions{
			Logger: log, Pprof: cfg.Pprof, Ready: ready, Routes: status,
		})
		if err := hs.Start(); err != nil {
			return fmt.Errorf("metrics server (METRICS_ADDR %s): %w", cfg.MetricsAddr, err)
		}
		log.Info("metrics listening", "address", hs.Addr(), "pprof", cfg.Pprof)
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			hs.Shutdown(sctx)
			log.Info("closed", "resource", "metrics server")
		}()
	}

	if nostore {
		log.Warn("MEASUREMENT BUILD (-tags loteria_nostore): batches are acknowledged WITHOUT BEING STORED; never use this binary for real bets")
	}
	st, err := store.Open(cfg.StorePath, store.Options{
		Logger:     log.With("component", "store"),
		Registerer: reg,
		Discard:    nostore,
	})
	if err != nil {
		return err
	}
	defer func() {
		if cerr := st.Close(); cerr != nil {
			log.Error("close store", "err", cerr)
			if err == nil {
				err = cerr
			}
		} else {
			log.Info("closed", "resource", "store", "path", cfg.StorePath)
		}
	}()
	s, err := central.New(cfg.Server, central.Deps{
		Ledger:     st,
		Logger:     log,
		Registerer: reg,
		Tracer:     tp.Tracer("github.com/loteria/loteria/services/central"),
	})
	if err != nil {
		return err
	}
	srv.Store(s)
	return s.Serve(ctx, ln)
}
