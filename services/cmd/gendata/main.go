// Command gendata writes synthetic agency bet files in the dataset format of
// the Lotería Nacional exercise: DIR/agency-<i>.csv for i in 1..N.
//
// Usage:
//
//	gendata [--agencies N] [--bets M | --bets M1,M2,...] [--seed S] [--out DIR] [--winner-ratio R]
//
// --bets takes either one count for every agency or a comma list with one
// count per agency (then --agencies defaults to the list's length). The
// output is a pure function of the flags. One summary line per file goes to
// stdout; errors go to stderr with exit status 1 (2 for bad flags).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/loteria/loteria/internal/usage"
	"github.com/loteria/loteria/services/internal/datagen"
)

// program is what -h says.
var program = usage.Program{
	Name: "gendata",
	Summary: "writes realistic, deterministic bet files in the course's dataset format " +
		"(DIR/agency-<i>.csv for agencies 1..N), for the demo, the tests and the Compose stack",
	Notes: []string{
		"The files are a pure function of the flags: the same flags always write the same bytes.\n" +
			"Example: gendata --agencies 5 --bets 10000 --out .data",
	},
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// betCounts is the value of --bets: one count, or one per agency.
type betCounts []int

func (c *betCounts) String() string {
	if c == nil {
		return ""
	}
	s := make([]string, len(*c))
	for i, n := range *c {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

// Kind is the word -h shows after --bets.
func (c *betCounts) Kind() string { return "N|N1,N2,..." }

func (c *betCounts) Set(v string) error {
	var counts betCounts
	for f := range strings.SplitSeq(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 0 {
			return fmt.Errorf("%q is not a bet count (a non-negative integer)", f)
		}
		counts = append(counts, n)
	}
	*c = counts
	return nil
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("gendata", flag.ContinueOnError)
	fs.SetOutput(stderr)
	agencies := fs.Int("agencies", 5, "number of agencies (files agency-1.csv .. agency-N.csv)")
	bets := betCounts{10000}
	fs.Var(&bets, "bets", "bets per agency: one count for all, or a comma list with one per agency")
	seed := fs.Uint64("seed", 1, "seed; the same flags always give the same files")
	out := fs.String("out", ".data", "output directory (created if missing)")
	ratio := fs.Float64("winner-ratio", datagen.DefaultWinnerRatio,
		"probability in [0,1] that a bet plays the winning number on purpose (on top of the uniform 1/10000)")
	if err := usage.Parse(fs, program, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "gendata:", err)
		return 2
	}
	bad := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "gendata: "+format+" (gendata -h lists every flag)\n", a...)
		return 2
	}
	if fs.NArg() > 0 {
		return bad("unexpected arguments %q", fs.Args())
	}
	agenciesSet := false
	fs.Visit(func(f *flag.Flag) { agenciesSet = agenciesSet || f.Name == "agencies" })
	switch {
	case len(bets) > 1 && !agenciesSet:
		*agencies = len(bets)
	case len(bets) > 1 && len(bets) != *agencies:
		return bad("--bets lists %d counts but --agencies is %d", len(bets), *agencies)
	}
	if *agencies < 1 {
		return bad("--agencies must be at least 1, not %d", *agencies)
	}
	if !(*ratio >= 0 && *ratio <= 1) {
		return bad("--winner-ratio must be in [0,1], not %v", *ratio)
	}
	if *out == "" {
		return bad("--out must not be empty")
	}
	wr := *ratio
	if wr == 0 {
		wr = -1 // datagen reads 0 as "default"; negative means none
	}

	if err := os.MkdirAll(*out, 0o755); err != nil {
		fmt.Fprintf(stderr, "gendata: %v\n", err)
		return 1
	}
	for i := 1; i <= *agencies; i++ {
		n := bets[0]
		if len(bets) > 1 {
			n = bets[i-1]
		}
		path := filepath.Join(*out, fmt.Sprintf("agency-%d.csv", i))
		opts := datagen.Options{Seed: *seed, Agency: i, WinnerRatio: wr}
		winners, err := datagen.WriteFile(path, opts, n)
		if err != nil {
			fmt.Fprintf(stderr, "gendata: %s: %v\n", path, err)
			return 1
		}
		fmt.Fprintf(stdout, "%s bets=%d winners=%d\n", path, n, winners)
	}
	return 0
}
