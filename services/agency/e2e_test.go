package agency

import (
	"crypto/tls"
	"crypto/x509"
	"strings"
	"sync"
	"testing"

	"github.com/loteria/loteria/internal/testenv"
	"github.com/loteria/loteria/services/agency/agencytest"
	"github.com/loteria/loteria/services/internal/certs"
	"github.com/loteria/loteria/services/internal/certs/certstest"
	"github.com/loteria/loteria/services/internal/datagen"
)

// runFiveAgencies sends agency-1..5.csv of dir to a fake central that
// drops each agency's connection once, mid-file, and checks that every
// file is stored exactly once and each agency gets its own winners.
func runFiveAgencies(t *testing.T, dir string) {
	want := map[int][]string{}
	for i := 1; i <= 5; i++ {
		want[i] = csvLines(t, testenv.AgencyFile(dir, i))
	}
	var mu sync.Mutex
	dropped := map[int]bool{}
	fake := newFake(t, agencytest.Options{Agencies: 5, OnBatch: func(b agencytest.Batch) agencytest.Action {
		mu.Lock()
		defer mu.Unlock()
		if !dropped[b.Agency] && b.From >= int64(len(want[b.Agency])/2) {
			dropped[b.Agency] = true
			return agencytest.Action{Drop: true}
		}
		return agencytest.Action{}
	}})
	var wg sync.WaitGroup
	results := make([]Result, 6)
	for i := 1; i <= 5; i++ {
		wg.Go(func() {
			s, err := OpenFileStream(testenv.AgencyFile(dir, i), i)
			if err != nil {
				t.Error(err)
				return
			}
			opts := testOptions(fake.Addr())
			opts.Agency, opts.MaxBets, opts.InFlight = i, 100, 16
			h := newHarness(t, opts, Deps{})
			if results[i], err = h.run(t, s); err != nil {
				t.Errorf("agency %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	for i := 1; i <= 5; i++ {
		var got []string
		for _, s := range fake.Stored(i) {
			got = append(got, s.Line)
		}
		if !equalStrings(got, want[i]) {
			t.Errorf("agency %d: stored %d bets, want its %d exactly once, in order", i, len(got), len(want[i]))
		}
		if !equalStrings(results[i].Winners, winnersOf(want[i])) || results[i].Bets != len(want[i]) {
			t.Errorf("agency %d: %d winners, %d bets confirmed; want %d and %d", i, len(results[i].Winners), results[i].Bets, len(winnersOf(want[i])), len(want[i]))
		}
	}
}

func TestFiveAgenciesOfficialData(t *testing.T) {
	runFiveAgencies(t, testenv.OfficialDataDir(t))
}

func TestFiveAgenciesGeneratedData(t *testing.T) {
	dir := t.TempDir()
	for i := 1; i <= 5; i++ {
		if _, err := datagen.WriteFile(testenv.AgencyFile(dir, i), datagen.Options{Seed: 3, Agency: i}, 3000+i*500); err != nil {
			t.Fatal(err)
		}
	}
	runFiveAgencies(t, dir)
}

// TestTLS: with Options.TLS the agency speaks TLS; the session runs the
// same inside it.
func TestTLS(t *testing.T) {
	ca := certstest.CA(t)
	tlsCert := func(p *certs.Pair) tls.Certificate {
		return tls.Certificate{Certificate: [][]byte{p.Cert.Raw}, PrivateKey: p.Key, Leaf: p.Cert}
	}
	central := tlsCert(certstest.Central(t, ca, "127.0.0.1"))
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	fake := newFake(t, agencytest.Options{TLS: &tls.Config{Certificates: []tls.Certificate{central}}})

	bets := genBets(40, 60)
	opts := testOptions(fake.Addr())
	opts.TLS = &tls.Config{RootCAs: pool}
	h := newHarness(t, opts, Deps{})
	res, err := h.run(t, NewBetsStream(bets))
	if err != nil {
		t.Fatal(err)
	}
	checkStoredOnce(t, fake, linesOf(bets))
	if !equalStrings(res.Winners, winnersOf(linesOf(bets))) {
		t.Errorf("winners %v", res.Winners)
	}

	// Without the CA the handshake fails, at once: a certificate this
	// agency does not trust is a setting to fix, not a passing failure.
	opts.TLS = &tls.Config{RootCAs: x509.NewCertPool()}
	h2 := newHarness(t, opts, Deps{})
	if _, err := h2.run(t, NewBetsStream(bets)); err == nil || !strings.Contains(err.Error(), "certificate is not one this agency trusts") {
		t.Errorf("err = %v, want the untrusted certificate named", err)
	}
	if len(h2.clock.Sleeps()) != 0 {
		t.Errorf("retried %d times", len(h2.clock.Sleeps()))
	}

	// A central that refuses the agency's certificate (here: it trusts no
	// agency CA) ends the session with an alert at the agency's first
	// read: said so, at once, not retried for the whole retry budget.
	strict := newFake(t, agencytest.Options{TLS: &tls.Config{
		Certificates: []tls.Certificate{central},
		ClientAuth:   tls.RequireAndVerifyClientCert, ClientCAs: x509.NewCertPool(),
	}})
	opts.Address = strict.Addr()
	opts.TLS = &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{tlsCert(certstest.Agency(t, ca, 1))}}
	// The alert meets the WELCOME read, or with --protocol=seed the first
	// ack read. (A seed-protocol agency that pipelines may instead write
	// again into the closed connection and fail with EPIPE before its
	// reader sees the alert: final too, as any failure after connecting in
	// the seed protocol, but without the refusal named.)
	for _, tt := range []struct {
		proto    string
		inFlight int
	}{{ProtocolLoteria, opts.InFlight}, {ProtocolSeed, 1}} {
		opts.Protocol, opts.InFlight = tt.proto, tt.inFlight
		h4 := newHarness(t, opts, Deps{})
		if _, err := h4.run(t, NewBetsStream(bets)); err == nil || !strings.Contains(err.Error(), "the central refused this agency's certificate") {
			t.Errorf("%s: err = %v, want the refused certificate named", tt.proto, err)
		}
		if len(h4.clock.Sleeps()) != 0 {
			t.Errorf("%s: retried %d times", tt.proto, len(h4.clock.Sleeps()))
		}
	}
	opts.Protocol = ProtocolLoteria

	// TLS to a plaintext central: said so, at once.
	plain := newFake(t, agencytest.Options{})
	opts.Address = plain.Addr()
	h3 := newHarness(t, opts, Deps{})
	if _, err := h3.run(t, NewBetsStream(bets)); err == nil || !strings.Contains(err.Error(), "does not speak TLS") {
		t.Errorf("err = %v, want the plaintext central named", err)
	}
}
