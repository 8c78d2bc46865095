package compose

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// RegisterFlags registers the generator's options on fs (deploy/cmd/generar-compose and
// deploy/cmd/stack share them) and returns the --certs-cmd value.
func RegisterFlags(fs *flag.FlagSet, o *Options) (certsCmd *string) {
	fs.IntVar(&o.Agencies, "agencies", 0, "number of agencies N (>= 1)")
	fs.StringVar(&o.Mode, "mode", ModeContinuous, "continuous (rounds until stopped, agencies loop with generated bets) or oneshot (one round, each agency sends its file once)")
	fs.StringVar(&o.Root, "root", ".", "repository root")
	fs.StringVar(&o.Output, "output", "", "compose file to write (default <root>/deploy/out/docker-compose.yaml)")
	fs.StringVar(&o.GenDir, "gen-dir", "", "directory for the generated agency configs, Prometheus targets and certificates (default: the output's directory)")
	fs.StringVar(&o.DataDir, "data-dir", "", "oneshot: directory with agency-<i>.csv data files to use where present, e.g. ../shared/datasets/tp0")
	fs.StringVar(&o.GeneratedDataDir, "generated-data-dir", "", "oneshot: directory of the generated agency-<i>.csv files (default <root>/.data)")
	fs.StringVar(&o.LogFormat, "log-format", "json", "LOG_FORMAT of the loteria processes: json, tint or seed")
	fs.StringVar(&o.LogLevel, "log-level", "INFO", "log level of the loteria processes")
	fs.IntVar(&o.BatchMaxAmount, "batch-max", 0, fmt.Sprintf("batch.maxAmount of the agencies (default %d, oneshot %d)", DefaultBatchMax, DefaultOneShotBatchMax))
	fs.DurationVar(&o.Linger, "linger", 0, fmt.Sprintf("CLI_LINGER of the agencies (default %s)", DefaultLinger))
	fs.DurationVar(&o.RoundCutoff, "round-cutoff", 0, fmt.Sprintf("continuous: ROUND_CUTOFF of the central (default %s)", DefaultRoundCutoff))
	fs.Float64Var(&o.Rate, "rate", 0, fmt.Sprintf("bets/s each agency sends (default %g, oneshot %g)", DefaultRate, DefaultOneShotRate))
	fs.IntVar(&o.BetsPerRound, "bets-per-round", 0, fmt.Sprintf("continuous: bets each agency sends per round (default %d)", DefaultBetsPerRound))
	fs.IntVar(&o.LoadAgencies, "load-agencies", 0, fmt.Sprintf("agencies of the load profile (default %d; ids N+1..N+L)", DefaultLoadAgencies))
	fs.Float64Var(&o.LoadRate, "load-rate", 0, fmt.Sprintf("total bets/s of the load profile (default %g)", DefaultLoadRate))
	fs.DurationVar(&o.LoadDuration, "load-duration", 0, fmt.Sprintf("how long the load profile sends (default %s)", DefaultLoadDuration))
	fs.BoolVar(&o.NoLoad, "no-load", false, "leave the load profile out")
	fs.BoolVar(&o.TLS, "tls", false, "agencies reach the central over mutual TLS; writes certificates into <gen-dir>/certs")
	fs.Float64Var(&o.Sampling, "sampling", 0, fmt.Sprintf("share of traces recorded, (0, 1] (default %g up to %d agencies in all, then %d/N)", DefaultSampling, FullySampledAgencies, SampledAgencies))
	return fs.String("certs-cmd", "", "command writing the certificates (default: go run ./services/cmd/certs)")
}

// Report says what was written, what it replaced, and which data files are still missing.
func Report(stdout, stderr io.Writer, plan *Plan, before State) {
	cwd, err := os.Getwd()
	if err != nil {
		cwd = plan.Options.Root
	}
	show := func(p string) string {
		if r, err := filepath.Rel(cwd, p); err == nil {
			return r
		}
		return p
	}
	s := plan.Settings()
	fmt.Fprintf(stdout, "wrote %s (%s), %d agency configs, %s, %s and %s\n",
		show(plan.Compose.Path), s.Summary(), len(plan.Configs), show(plan.Targets.Path), show(plan.EnvExample.Path), show(plan.Stamp.Path))
	if before.Stamp != nil {
		if diff := before.Stamp.Settings.Diff(s); len(diff) > 0 {
			fmt.Fprintf(stdout, "replaced a stack generated with other settings (%s); its data volumes are kept\n", strings.Join(diff, "; "))
		}
	}
	if plan.Options.TLS {
		fmt.Fprintf(stdout, "certificates in %s (CA, central, agencies 1..%d)\n", show(plan.CertsHostDir()), plan.Options.Agencies)
	}
	if !plan.Options.OneShot() {
		return
	}
	provided := 0
	for _, d := range plan.Data {
		if !d.Generated {
			provided++
		}
	}
	if plan.Options.DataDir != "" {
		fmt.Fprintf(stdout, "data: %d agencies read %s, ", provided, show(plan.Options.DataDir))
	} else {
		fmt.Fprint(stdout, "data: ")
	}
	fmt.Fprintf(stdout, "%d agencies read generated data in %s\n", len(plan.Data)-provided, show(plan.Options.GeneratedDataDir))
	if missing := plan.MissingData(); len(missing) > 0 {
		fmt.Fprintf(stderr, "generar-compose: %d data files are missing (first: %s); generate them before `docker compose up`:\n  go run ./services/cmd/gendata --agencies %d --out %s\n",
			len(missing), show(missing[0].Path), plan.Options.Agencies, show(plan.Options.GeneratedDataDir))
	}
}
