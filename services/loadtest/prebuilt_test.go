package loadtest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/loteria/loteria/services/agency"
	"github.com/loteria/loteria/services/internal/wire"
)

// A prebuilt agency whose batch is refused stops with the refusal, at any
// window: the sender does not wait for room that a stopped reader never
// makes (it did, for ever, waiting to enter its next frame).
func TestPrebuiltStopsAtAnErrorAck(t *testing.T) {
	for _, inFlight := range []int{1, 2, 8} {
		t.Run(fmt.Sprintf("in-flight %d", inFlight), func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			served := make(chan struct{})
			go func() {
				defer close(served)
				nc, err := ln.Accept()
				if err != nil {
					return
				}
				defer nc.Close()
				br := bufio.NewReader(nc)
				if _, err := wire.ReadFrame(br, nil, 1<<16); err != nil {
					return
				}
				if err := wire.WriteFrame(nc, wire.AppendErrorAck(nil, "refused")); err != nil {
					return
				}
				io.Copy(io.Discard, br) // whatever else comes, until the agency closes
			}()
			cfg := Config{Batch: 10, InFlight: inFlight, Bets: 100000, Timeout: 10 * time.Second, Seed: 1}
			done := make(chan error, 1)
			go func() {
				done <- runPrebuilt(context.Background(), cfg, ln.Addr().String(), &agencyRun{id: 1}, buildFrames(cfg, 1), &source{}, time.Time{}, nil,
					func(time.Duration, int) {})
			}()
			select {
			case err := <-done:
				var ae *agency.Error
				if !errors.As(err, &ae) || ae.Reason != "error_ack" {
					t.Fatalf("runPrebuilt = %v, want the refusal", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("runPrebuilt still running 30 s after its batch was refused")
			}
			<-served
		})
	}
}

// TestBuildAllFrames: every agency gets its own frames, the ones
// buildFrames makes for its id, whatever the first id.
func TestBuildAllFrames(t *testing.T) {
	for _, first := range []int{1, 7} {
		cfg := Config{Agencies: 5, FirstID: first, Batch: 50, Seed: 3}
		all := buildAllFrames(cfg)
		if len(all) != cfg.Agencies+1 || all[0] != nil {
			t.Fatalf("first id %d: %d entries, [0] = %v; want %d, nil", first, len(all), all[0] != nil, cfg.Agencies+1)
		}
		for i := 1; i <= cfg.Agencies; i++ {
			id := first + i - 1
			want := buildFrames(cfg, id)
			if len(all[i]) != len(want) {
				t.Fatalf("agency %d: %d frames, want %d", id, len(all[i]), len(want))
			}
			for k := range want {
				if !bytes.Equal(all[i][k].bytes, want[k].bytes) {
					t.Fatalf("agency %d frame %d differs from buildFrames(%d)", id, k, id)
				}
			}
			h, _, err := wire.ReadBatch(all[i][0].bytes[wire.HeaderLen:])
			if err != nil || h.Agency != id {
				t.Fatalf("agency %d: its first frame's header says agency %d (%v)", id, h.Agency, err)
			}
		}
	}
}
