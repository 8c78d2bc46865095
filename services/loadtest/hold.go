package loadtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"crypto/tls"
	"path/filepath"

	"github.com/loteria/loteria/services/internal/certs"
	"github.com/loteria/loteria/services/internal/tlsconf"
	"github.com/loteria/loteria/services/internal/wire"
)

// HoldReport is the outcome of a connections-only run.
type HoldReport struct {
	Connections   int           `json:"connections"`
	Failed        int           `json:"failed"`
	RSSBefore     float64       `json:"central_rss_before_bytes"`
	RSSHeld       float64       `json:"central_rss_held_bytes"`
	PerConnection float64       `json:"central_rss_per_connection_bytes"`
	ConnectTime   time.Duration `json:"connect_ns"`
	FirstError    string        `json:"first_error,omitempty"`
}

// HoldOptions say how a connections-only run announces its connections.
type HoldOptions struct {
	// FullBatch sends one full 8 KiB batch of generated bets on each
	// connection (the seed protocol) before it idles, so the figure is
	// what an idle connection costs after real traffic, not only after an
	// empty batch.
	FullBatch bool
	// TLSDir, when set, connects over mutual TLS with the certificates
	// bin/certs wrote there (agency-<i>.pem for connection i).
	TLSDir string
	Seed   uint64
}

// Hold opens n connections to addr, each announcing itself with an empty
// batch (so the central has set it up fully), holds them idle for hold,
// and reads the central's resident memory from metricsURL before and
// while they are held.
func Hold(ctx context.Context, addr, metricsURL string, n int, hold time.Duration) (*HoldReport, error) {
	return HoldWith(ctx, addr, metricsURL, n, hold, HoldOptions{})
}

// HoldWith is Hold with options.
func HoldWith(ctx context.Context, addr, metricsURL string, n int, hold time.Duration, o HoldOptions) (*HoldReport, error) {
	rep := &HoldReport{Connections: n}
	var err error
	if rep.RSSBefore, err = ScrapeGauge(ctx, metricsURL, "process_resident_memory_bytes"); err != nil {
		return nil, err
	}
	conns := make([]net.Conn, n)
	errs := make([]error, n)
	start := time.Now()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 256) // bound the dial storm to the listen backlog
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			conns[i], errs[i] = announce(ctx, addr, i+1, o)
		})
	}
	wg.Wait()
	rep.ConnectTime = time.Since(start)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	for _, e := range errs {
		if e != nil {
			rep.Failed++
			if rep.FirstError == "" {
				rep.FirstError = e.Error()
			}
		}
	}
	t := time.NewTimer(hold)
	select {
	case <-ctx.Done():
		t.Stop()
		return rep, ctx.Err()
	case <-t.C:
	}
	if rep.RSSHeld, err = ScrapeGauge(ctx, metricsURL, "process_resident_memory_bytes"); err != nil {
		return rep, err
	}
	if held := n - rep.Failed; held > 0 {
		rep.PerConnection = (rep.RSSHeld - rep.RSSBefore) / float64(held)
	}
	return rep, nil
}

func announce(ctx context.Context, addr string, id int, o HoldOptions) (net.Conn, error) {
	d := net.Dialer{Timeout: 30 * time.Second}
	var c net.Conn
	var err error
	if o.TLSDir != "" {
		var tc *tls.Config
		tc, err = tlsconf.ClientConfig(filepath.Join(o.TLSDir, certs.AgencyFile(id)), filepath.Join(o.TLSDir, certs.AgencyKeyFile(id)),
			filepath.Join(o.TLSDir, "ca.pem"), "")
		if err != nil {
			return nil, err
		}
		td := tls.Dialer{NetDialer: &d, Config: tc}
		c, err = td.DialContext(ctx, "tcp", addr)
	} else {
		c, err = d.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return nil, err
	}
	frame := wire.AppendFrame(nil, []byte(strconv.Itoa(id)+";0\n"))
	if o.FullBatch {
		frame = buildFrames(Config{Batch: 1000, Seed: o.Seed}, id)[0].bytes
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if err := wire.WriteFull(c, frame); err != nil {
		c.Close()
		return nil, err
	}
	ack, err := wire.ReadFrame(bufio.NewReaderSize(c, 64), nil, 1024)
	if err == nil {
		err = wire.ParseAck(ack)
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

// ScrapeGauge reads one unlabelled sample from a Prometheus text endpoint.
func ScrapeGauge(ctx context.Context, url, name string) (float64, error) {
	if url == "" {
		return 0, errors.New("no central metrics URL: pass --central-metrics http://host:9464/metrics")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 16<<20))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return strconv.ParseFloat(strings.Fields(v)[0], 64)
		}
	}
	return 0, fmt.Errorf("scrape %s: no %s sample", url, name)
}
