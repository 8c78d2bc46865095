// Command render draws every dashboard's panels from a real Prometheus into PNG files, for the
// docs (Grafana cannot run where loteria is developed; these are the panels' data plotted with
// gonum/plot, not screenshots of Grafana).
//
//	go run ./dashboards/cmd/render -prom http://127.0.0.1:9090 -from 2026-12-01T10:00:00Z -to 2026-12-01T10:02:00Z -out docs/img
//
// `make pictures` renders them from a stack test's run instead (tests/stack, LOTERIA_PICTURES).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/loteria/loteria/dashboards/render"
)

func main() {
	prom := flag.String("prom", "http://127.0.0.1:9090", "Prometheus base URL")
	from := flag.String("from", "", "start of the range, RFC 3339 (default: 15 minutes ago)")
	to := flag.String("to", "", "end of the range, RFC 3339 (default: now)")
	step := flag.Duration("step", 5*time.Second, "range query step (the scrape interval)")
	out := flag.String("out", "docs/img", "directory for <dashboard uid>.png")
	flag.Parse()
	end, start := time.Now(), time.Now().Add(-15*time.Minute)
	var err error
	if *to != "" {
		if end, err = time.Parse(time.RFC3339, *to); err != nil {
			fail(fmt.Errorf("-to: %w", err))
		}
	}
	if *from != "" {
		if start, err = time.Parse(time.RFC3339, *from); err != nil {
			fail(fmt.Errorf("-from: %w", err))
		}
	} else {
		start = end.Add(-15 * time.Minute)
	}
	files, err := render.All(context.Background(), render.Prometheus{URL: *prom}, start, end, *step, *out)
	if err != nil {
		fail(err)
	}
	for _, f := range files {
		fmt.Println("wrote", f)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "render:", err)
	os.Exit(1)
}
