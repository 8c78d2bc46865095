// Command loadtest drives many simulated agencies against a central (its
// own, in process, unless --addr names one) and reports throughput, ack
// latency, barrier wait, errors and correctness. See docs/BENCHMARKS.md.
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
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/loteria/loteria/internal/usage"
	"github.com/loteria/loteria/observability"
	"github.com/loteria/loteria/services/agency"
	"github.com/loteria/loteria/services/loadtest"
)

// program is what -h says.
var program = usage.Program{
	Name: "loadtest",
	Summary: "drives many simulated agencies (the real agency client, one TCP connection each) against a central, " +
		"its own in this process unless --addr names one, and reports throughput, ack latency, errors and whether every agency got its winners",
	Notes: []string{
		"The in-process central stores in a fresh temporary directory (--store-dir to choose one) and is\n" +
			"checked afterwards: every agency's winners, and the store holding exactly the acknowledged bets.\n" +
			"Examples:\n" +
			"  loadtest --agencies 100 --bets 1000                  a short run with its checks\n" +
			"  loadtest --agencies 1000 --duration 10s --quiet      sustained throughput\n" +
			"  loadtest --agencies 1000 --duration 10s --rate 300000 --warmup 2s   ack latency at a set load\n" +
			"Measurements and how they were taken: docs/BENCHMARKS.md.",
	},
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg loadtest.Config
	fs.IntVar(&cfg.Agencies, "agencies", 100, "simulated agencies (connections)")
	fs.IntVar(&cfg.FirstID, "first-id", 1, "id of the first simulated agency (the others follow), e.g. N+1 beside a stack's agencies 1..N")
	fs.IntVar(&cfg.Bets, "bets", 1000, "bets per agency (0 with --data-dir: each whole file)")
	fs.DurationVar(&cfg.Duration, "duration", 0, "send for this long instead of --bets")
	fs.IntVar(&cfg.Batch, "batch", 1000, "bets per batch at most (frames never exceed 8 KiB, so large values mean full frames)")
	fs.IntVar(&cfg.InFlight, "in-flight", 4, "batches in flight per agency")
	fs.Float64Var(&cfg.Rate, "rate", 0, "total bets/s to offer, open model; a batch then holds at most one second of its agency's bets (0: as fast as acks come)")
	fs.StringVar(&cfg.DataDir, "data-dir", "", "directory of agency-<i>.csv files (default: generated bets)")
	fs.StringVar(&cfg.Protocol, "protocol", agency.ProtocolLoteria, "loteria or seed")
	seed := fs.Uint64("seed", 1, "generator seed")
	fs.StringVar(&cfg.Addr, "addr", "", "central to target (default: start one in this process)")
	fs.StringVar(&cfg.StoreDir, "store-dir", "", "in-process central's store directory (default: temporary)")
	fs.BoolVar(&cfg.NoStore, "no-store", false, "in-process central acknowledges without storing (to measure storage's cost)")
	fs.BoolVar(&cfg.Prebuilt, "prebuilt", false, "cheap load: each agency sends a few prebuilt frames over and over (seed protocol) on a raw connection, so the run measures the central, not bet generation")
	fs.BoolVar(&cfg.TLS, "tls", false, "agencies connect over mutual TLS, each with its own certificate (made for the run, or from --tls-dir with --addr)")
	fs.StringVar(&cfg.TLSDir, "tls-dir", "", "with --tls and --addr: the directory bin/certs wrote (ca.pem, agency-<i>.pem, agency-<i>-key.pem)")
	fs.IntVar(&cfg.Restarts, "restarts", 0, "kill and reopen the in-process central this many times during the run (needs --bets N, or --bets 0 with --data-dir), then check every bet is stored exactly once")
	fs.DurationVar(&cfg.RestartEvery, "restart-every", 500*time.Millisecond, "time between restarts (jittered ±50%)")
	fs.DurationVar(&cfg.Timeout, "timeout", 30*time.Second, "per-ack timeout")
	fs.DurationVar(&cfg.Warmup, "warmup", 0, "leave the batches due in the first part of the run out of the latency figures")
	output := fs.String("o", "text", "report format: text or json")
	maxP99 := fs.Duration("max-p99", 0, "exit 1 when ack p99 exceeds this (0: no limit)")
	maxErr := fs.Float64("max-error-rate", 0, "exit 1 when more than this share of agencies fail (default 0: any failure fails)")
	metricsAddr := fs.String("metrics-addr", "", "serve the load tool's /metrics here (e.g. :9470)")
	quiet := fs.Bool("quiet", false, "no progress lines")
	centralLog := fs.String("central-log-level", "", "log the in-process central at this level to stderr (default: silent)")
	hold := fs.Duration("hold", 0, "connections-only mode: open --agencies connections, hold them idle this long, report the central's memory per connection")
	centralMetrics := fs.String("central-metrics", "", "the target central's /metrics URL (for --hold)")
	holdFull := fs.Bool("hold-full-batch", false, "with --hold: each connection sends one full 8 KiB batch before it idles (memory after real traffic); --tls-dir connects over mutual TLS")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run (load tool and in-process central) to this file")
	if err := usage.Parse(fs, program, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "loadtest:", err)
		return 2
	}
	cfg.Seed = *seed

	if *hold > 0 {
		if cfg.Addr == "" {
			fmt.Fprintln(stderr, "loadtest: --hold needs --addr of a central running as its own process (its memory is what is measured)")
			return 2
		}
		rep, err := loadtest.HoldWith(ctx, cfg.Addr, *centralMetrics, cfg.Agencies, *hold,
			loadtest.HoldOptions{FullBatch: *holdFull, TLSDir: cfg.TLSDir, Seed: cfg.Seed})
		if err != nil {
			fmt.Fprintln(stderr, "loadtest:", err)
			return 1
		}
		fmt.Fprintf(stdout, "Connections\t%d held (%d failed) in %s\nCentral RSS\t%.1f MiB before, %.1f MiB held\nPer connection\t%.1f KiB\n",
			rep.Connections-rep.Failed, rep.Failed, rep.ConnectTime.Round(time.Millisecond),
			rep.RSSBefore/(1<<20), rep.RSSHeld/(1<<20), rep.PerConnection/1024)
		if rep.FirstError != "" {
			fmt.Fprintln(stdout, "First error\t"+rep.FirstError)
		}
		if rep.Failed > 0 {
			return 1
		}
		return 0
	}

	if !*quiet {
		cfg.Progress = stderr
	}
	if *centralLog != "" {
		l, err := observability.NewLogger(stderr, observability.LogOptions{Level: *centralLog})
		if err != nil {
			fmt.Fprintln(stderr, "loadtest:", err)
			return 2
		}
		cfg.CentralLogger = l.With("component", "central")
	} else {
		cfg.CentralLogger = slog.New(slog.DiscardHandler)
	}
	if *metricsAddr != "" {
		reg := observability.NewRegistry("loadtest")
		cfg.Registerer = reg
		hs := observability.NewHTTPServer(*metricsAddr, reg, observability.HTTPOptions{})
		if err := hs.Start(); err != nil {
			fmt.Fprintln(stderr, "loadtest:", err)
			return 1
		}
		defer hs.Shutdown(context.Background())
		fmt.Fprintln(stderr, "loadtest: metrics on", hs.Addr())
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(stderr, "loadtest:", err)
			return 2
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(stderr, "loadtest:", err)
			return 2
		}
		defer pprof.StopCPUProfile()
	}
	rep, err := loadtest.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(stderr, "loadtest:", err)
		return 2
	}
	if *output == "json" {
		rep.WriteJSON(stdout)
	} else {
		rep.WriteText(stdout)
	}
	code := 0
	if rep.Failed {
		fmt.Fprintln(stderr, "loadtest: a correctness check failed")
		code = 1
	}
	if *maxP99 > 0 && rep.AckLatency.P99 > *maxP99 {
		fmt.Fprintf(stderr, "loadtest: ack p99 %s over --max-p99 %s\n", rep.AckLatency.P99, *maxP99)
		code = 1
	}
	if rep.ErrorRate() > *maxErr {
		fmt.Fprintf(stderr, "loadtest: error rate %.4f over --max-error-rate %.4f\n", rep.ErrorRate(), *maxErr)
		code = 1
	}
	return code
}
