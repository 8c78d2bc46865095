// Command generar-compose writes the Docker Compose stack of loteria for N agencies, with each
// agency's config file, the Prometheus scrape targets of the agencies, certificates for mutual
// TLS (--tls), an example .env of the host ports and a stamp of the settings.
//
//	go run ./deploy/cmd/generar-compose --agencies 5 [--output deploy/out/docker-compose.yaml]
//	    [--mode continuous|oneshot] [--data-dir ../shared/datasets/tp0] [--tls] [--force] ...
//
// The default stack runs continuous rounds with paced agencies that generate their bets; with
// --mode oneshot, agencies whose agency-<i>.csv is in --data-dir read that file and the others
// read generated data from --generated-data-dir, which `go run ./services/cmd/gendata --agencies
// N --out .data` writes. It refuses to replace a compose file it did not write or one edited
// since, unless --force. Paths are relative to the current directory; run it from the repository
// root (or pass --root).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

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
	certsCmd := compose.RegisterFlags(fs, &o)
	force := fs.Bool("force", false, "replace a compose file this generator did not write, or one edited since")
	if err := usage.Parse(fs, program, args); err != nil {
		return err // flag.ErrHelp after -h: the help is written, exit 0
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %v", fs.Args())
	}
	if *certsCmd != "" {
		o.CertsCommand = strings.Fields(*certsCmd)
	}
	plan, err := compose.NewPlan(o)
	if err != nil {
		return err
	}
	before, err := compose.Inspect(plan.Options.Output)
	if err != nil {
		return err
	}
	if err := plan.Write(*force); err != nil {
		return err
	}
	compose.Report(stdout, stderr, plan, before)
	return nil
}
