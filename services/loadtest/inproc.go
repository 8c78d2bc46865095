package loadtest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/loteria/loteria/services/central"
	"github.com/loteria/loteria/services/internal/certs"
	"github.com/loteria/loteria/services/internal/store"
	"github.com/loteria/loteria/services/internal/tlsconf"
)

// inproc is the load tool's own central, in this process, over a real
// store, which the restart mode kills and reopens on the same store and
// port while the agencies run.
type inproc struct {
	cfg  central.Config
	path string
	opts store.Options
	log  *slog.Logger
	reg  prometheus.Registerer

	mu     sync.Mutex
	srv    *central.Server
	st     *store.Store
	cancel context.CancelFunc
	done   chan error
	addr   string
	kills  int
}

func newInproc(cfg Config, path string) *inproc {
	return &inproc{
		cfg: central.Config{
			Address:        "127.0.0.1:0",
			Agencies:       cfg.Agencies,
			MaxConnections: cfg.Agencies + 64,
			IdleTimeout:    5 * time.Minute,
		},
		path: path,
		opts: store.Options{Discard: cfg.NoStore},
		log:  cfg.CentralLogger,
		reg:  cfg.Registerer,
	}
}

// useTLS makes certificates for n agencies in dir and serves only the
// mutual-TLS listener.
func (p *inproc) useTLS(dir string, n int) error {
	b, err := certs.Generate(dir, certs.Options{Agencies: n, Hosts: []string{"127.0.0.1"}})
	if err != nil {
		return fmt.Errorf("make the run's certificates: %w", err)
	}
	tc, err := tlsconf.ServerConfig(b.Central.Cert, b.Central.Key, b.CAFiles.Cert)
	if err != nil {
		return err
	}
	p.cfg.Address, p.cfg.TLSAddress = "", "127.0.0.1:0"
	p.cfg.TLS, p.cfg.AgencyID, p.cfg.HandshakeReason, p.cfg.HandshakeReasons = tc, tlsconf.PeerAgency, tlsconf.HandshakeReason, tlsconf.Reasons()
	return nil
}

// start opens the store (recovering it) and serves on the central's
// address: a fresh port the first time, the same one after a kill.
func (p *inproc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	opts := p.opts
	opts.Logger = p.log
	if p.kills == 0 {
		// Metrics are registered once: a restarted central counts afresh
		// in a registry of its own.
		opts.Registerer = p.reg
	}
	st, err := store.Open(p.path, opts)
	if err != nil {
		return fmt.Errorf("open the in-process central's store: %w", err)
	}
	cfg := p.cfg
	if p.addr != "" {
		if cfg.TLSAddress != "" {
			cfg.TLSAddress = p.addr
		} else {
			cfg.Address = p.addr
		}
	}
	deps := central.Deps{Ledger: st, Logger: p.log}
	if p.kills == 0 {
		deps.Registerer = p.reg
	}
	srv, err := central.New(cfg, deps)
	if err != nil {
		st.Close()
		return fmt.Errorf("start the in-process central: %w", err)
	}
	var ln *central.Listeners
	// After a kill the port may still be taken for a moment by the old
	// listener's last connections; try again briefly.
	for attempt := 0; ; attempt++ {
		ln, err = central.Listen(cfg)
		if err == nil || attempt == 50 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		st.Close()
		return err
	}
	if ln.Plain != nil {
		p.addr = ln.Plain.Addr().(*net.TCPAddr).String()
	} else {
		p.addr = ln.TLS.Addr().(*net.TCPAddr).String()
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	p.srv, p.st, p.cancel, p.done = srv, st, cancel, done
	return nil
}

// kill drops every connection without answering what is in flight, as a
// crash would look to the agencies, and closes the store; start reopens
// it, recovering it as a restarted central would.
func (p *inproc) kill() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.kills++
	p.srv.Abort()
	p.cancel()
	err := <-p.done
	return errors.Join(err, p.st.Close())
}

// stop shuts the central down gracefully and closes the store.
func (p *inproc) stop() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.srv == nil {
		return nil
	}
	p.cancel()
	err := errors.Join(<-p.done, p.st.Close())
	p.srv = nil
	return err
}

func (p *inproc) address() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.addr
}
