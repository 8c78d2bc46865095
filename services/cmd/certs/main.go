// Command certs writes a CA, the central's certificate and one certificate
// per agency for mutual TLS (docs/TLS.md).
//
// Usage:
//
//	certs --agencies N --out DIR [--hosts a,b] [--days 365] [--force]
//
// In DIR: ca.pem, ca-key.pem, central.pem, central-key.pem and
// agency-<i>.pem, agency-<i>-key.pem for i in 1..N. Run again over the same
// directory with a larger N to add agencies: the existing CA issues only
// the missing certificates. --force starts over with a new CA. One line per
// file goes to stdout; errors go to stderr with exit status 1 (2 for bad
// flags).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/loteria/loteria/internal/usage"
	"github.com/loteria/loteria/services/internal/certs"
)

// maxDays bounds --days (100 years), far beyond any sane certificate.
const maxDays = 36500

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("certs", flag.ContinueOnError)
	fs.SetOutput(stderr)
	agencies := fs.Int("agencies", 0, "number of agencies: certificates agency-1.pem .. agency-N.pem (required)")
	out := fs.String("out", "", "directory to write to, created if missing (required)")
	hosts := fs.String("hosts", "", "comma-separated DNS names and IP addresses the central is reached at, its certificate's SANs\n"+
		"(default "+strings.Join(certs.DefaultHosts(), ",")+"; when given, an existing central.pem must carry exactly these)")
	days := fs.Int("days", 365, "days the new certificates are valid")
	force := fs.Bool("force", false, "replace every file, starting over with a new CA (certificates issued before stop working)")
	prog := usage.Program{
		Name:    "certs",
		Summary: "writes a CA, the central's certificate and one certificate per agency for mutual TLS",
		Notes: []string{"Example: certs --agencies 5 --out .certs [--hosts central,10.0.0.7] [--days 365]",
			"Run it again with a larger N to add agencies: the existing CA issues only the missing files."},
	}
	if err := usage.Parse(fs, prog, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "certs:", err)
		return 2
	}
	refuse := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "certs: "+format+"\n", a...)
		fmt.Fprintln(stderr, "Run certs -h for the usage.")
		return 2
	}
	if fs.NArg() > 0 {
		return refuse("unexpected arguments %q: every option is a flag, e.g. --agencies 5 --out certs", fs.Args())
	}
	if *agencies < 1 {
		return refuse("--agencies is required: how many agencies need a certificate (e.g. --agencies 5)")
	}
	if *out == "" {
		return refuse("--out is required: the directory to write the certificates to (e.g. --out .certs)")
	}
	if *days < 1 || *days > maxDays {
		return refuse("--days must be 1..%d, not %d", maxDays, *days)
	}
	var hostList []string // nil: the defaults, or what an existing central.pem has
	if *hosts != "" {
		for h := range strings.SplitSeq(*hosts, ",") {
			h = strings.TrimSpace(h)
			if h == "" {
				return refuse("--hosts has an empty entry: give names separated by single commas, e.g. --hosts central,10.0.0.7")
			}
			hostList = append(hostList, h)
		}
	}

	b, err := certs.Generate(*out, certs.Options{
		Agencies: *agencies,
		Hosts:    hostList,
		Validity: time.Duration(*days) * 24 * time.Hour,
		Force:    *force,
	})
	if err != nil {
		fmt.Fprintf(stderr, "certs: %v\n", err)
		return 1
	}
	for _, p := range b.Written {
		fmt.Fprintf(stdout, "wrote %s\n", p)
	}
	if len(b.Written) == 0 {
		fmt.Fprintf(stdout, "nothing to write: %s already holds a CA, the central's certificate and agencies 1..%d\n", *out, *agencies)
	}
	fmt.Fprintf(stdout, "CA valid until %s. Give agency i agency-<i>.pem, agency-<i>-key.pem and ca.pem; "+
		"the central central.pem, central-key.pem and ca.pem. ca-key.pem issues certificates: it stays here.\n",
		b.CA.Cert.NotAfter.UTC().Format(time.DateOnly))
	return 0
}
