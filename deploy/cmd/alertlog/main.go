// Command alertlog is the loteria stack's alert receiver: Alertmanager posts its webhook
// notifications to POST /alerts, and alertlog logs one line per alert and lists the last ones at
// GET /api/alerts. `alertlog healthcheck [--url ...]` probes a running one (the image has no
// shell).
//
//	alertlog [--addr :9466]      (ALERTLOG_ADDR; LOG_FORMAT, LOGGING_LEVEL as the other programs)
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/loteria/loteria/deploy/alertlog"
	"github.com/loteria/loteria/observability"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stderr, nil)
	stop()
	os.Exit(code)
}

// run serves until ctx ends; ready, when not nil, receives the listening address.
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer, ready chan<- string) int {
	if len(args) > 0 && args[0] == "healthcheck" {
		return observability.HealthcheckCommand(ctx, "alertlog", "http://127.0.0.1:9466/healthz", args[1:], stderr)
	}
	fs := flag.NewFlagSet("alertlog", flag.ContinueOnError)
	fs.SetOutput(stderr)
	def := getenv("ALERTLOG_ADDR")
	if def == "" {
		def = ":9466"
	}
	addr := fs.String("addr", def, "address to listen on (ALERTLOG_ADDR)")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	log, err := observability.NewLogger(stderr, observability.LogOptions{Level: getenv("LOGGING_LEVEL"), Format: getenv("LOG_FORMAT")})
	if err != nil {
		fmt.Fprintln(stderr, "alertlog:", err)
		return 2
	}
	rcv := alertlog.New(log)
	srv := observability.NewHTTPServer(*addr, observability.NewRegistry("alertlog"), observability.HTTPOptions{
		Logger: log,
		Routes: map[string]http.Handler{
			"/alerts":         rcv,
			"GET /api/alerts": rcv.ListHandler(),
		},
	})
	if err := srv.Start(); err != nil {
		fmt.Fprintln(stderr, "alertlog:", err)
		return 1
	}
	log.Info("alertlog listening", "addr", srv.Addr(), "webhook", "POST /alerts")
	if ready != nil {
		ready <- srv.Addr()
	}
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		fmt.Fprintln(stderr, "alertlog:", err)
		return 1
	}
	return 0
}
