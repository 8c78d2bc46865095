// Command generar-compose writes the Docker Compose stack of loteria for N agencies, with each
// agency's config file and the Prometheus scrape targets of the agencies.
//
//	go run ./deploy/cmd/generar-compose --agencies 5 [--output deploy/out/docker-compose.yaml]
//	    [--data-dir ../shared/datasets/tp0] [--gen-dir DIR] [--generated-data-dir .data]
//
// Agencies whose agency-<i>.csv is in --data-dir read that file; the others read generated data
// from --generated-data-dir, which `go run ./services/cmd/gendata --agencies N --out .data` writes.
// Paths are relative to the current directory; run it from the repository root (or pass --root).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/loteria/loteria/deploy/compose"
	"github.com/loteria/loteria/internal/usage"
)

// program is what -h says.
var program = usage.Program{
	Name: "generar-compose",
	Summary: "writes the Docker Compose stack of loteria for N agencies (central, agencies, Prometheus, Grafana, Jaeger), " +
		"with each agency's config file and the Prometheus scrape targets of the agencies",
	Notes: []string{
		"Run it from the repository root (or pass --root); then: docker compose -f deploy/out/docker-compose.yaml up -d --build.\n" +
			"Agencies without a file in --data-dir read generated data: go run ./services/cmd/gendata --agencies N --out .data\n" +
			"More in deploy/README.md.",
	},
}

func main() {
	err := run(os.Args[1:], os.Stdout, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "generar-compose:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	var o compose.Options
	fs := flag.NewFlagSet("generar-compose", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.Agencies, "agencies", 0, "number of agencies N (>= 1)")
	fs.StringVar(&o.Root, "root", ".", "repository root")
	fs.StringVar(&o.Output, "output", "", "compose file to write (default <root>/deploy/out/docker-compose.yaml)")
	fs.StringVar(&o.GenDir, "gen-dir", "", "directory for the generated agency configs and Prometheus targets (default: the output's directory, or <root>/.data/compose for an output in the root)")
	fs.StringVar(&o.DataDir, "data-dir", "", "directory with agency-<i>.csv data files to use where present, e.g. ../shared/datasets/tp0")
	fs.StringVar(&o.GeneratedDataDir, "generated-data-dir", "", "directory of the generated agency-<i>.csv files (default <root>/.data)")
	fs.StringVar(&o.LogFormat, "log-format", "json", "LOG_FORMAT of the central and the agencies: json, tint or seed")
	fs.StringVar(&o.LogLevel, "log-level", "INFO", "log level of the central and the agencies")
	fs.IntVar(&o.BatchMaxAmount, "batch-max", 100, "batch.maxAmount of the agencies")
	fs.DurationVar(&o.Linger, "linger", 0, "CLI_LINGER of the agencies (default 60s)")
	if err := usage.Parse(fs, program, args); err != nil {
		return err // flag.ErrHelp after -h: the help is written, exit 0
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %v", fs.Args())
	}
	plan, err := compose.NewPlan(o)
	if err != nil {
		return err
	}
	if err := plan.Write(); err != nil {
		return err
	}
	cwd, err := os.Getwd()
	if err != nil {
		return fmt.Errorf("working directory: %w", err)
	}
	show := func(p string) string {
		if r, err := filepath.Rel(cwd, p); err == nil {
			return r
		}
		return p
	}
	provided := 0
	for _, d := range plan.Data {
		if !d.Generated {
			provided++
		}
	}
	fmt.Fprintf(stdout, "wrote %s (%d agencies), %d agency configs and %s\n",
		show(plan.Compose.Path), plan.Options.Agencies, len(plan.Configs), show(plan.Targets.Path))
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
	return nil
}
