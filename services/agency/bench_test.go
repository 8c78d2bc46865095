package agency

import (
	"bufio"
	"context"
	"net"
	"sync"
	"testing"

	"github.com/loteria/loteria/services/internal/wire"
)

// ackServer answers every frame at once: WELCOME to a HELLO, success to a
// batch, NO_WINNERS to END. It costs the agency nothing to talk to, so a
// benchmark against it prices the agency's own work: packing, framing,
// the window, acks.
func ackServer(b *testing.B) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	b.Cleanup(func() { ln.Close(); wg.Wait() })
	welcome := wire.AppendFrame(nil, wire.AppendWelcome(nil, wire.Welcome{Version: 1, Agency: 1, Round: 1, State: wire.RoundOpen}))
	ack := wire.AppendFrame(nil, []byte(wire.AckSuccess))
	winners := wire.AppendFrame(nil, wire.AppendWinnersMessage(nil, wire.Winners{Round: 1, Number: 7574}))
	wg.Go(func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer nc.Close()
				br := bufio.NewReaderSize(nc, 64<<10)
				bw := bufio.NewWriter(nc)
				var buf []byte
				for {
					p, err := wire.ReadFrame(br, buf[:0], 64<<10)
					if err != nil {
						return
					}
					buf = p
					switch {
					case wire.IsHello(p):
						bw.Write(welcome)
					case wire.IsEnd(p):
						bw.Write(winners)
						bw.Flush()
						return
					default:
						bw.Write(ack)
					}
					if br.Buffered() == 0 {
						bw.Flush()
					}
				}
			})
		}
	})
	return ln.Addr().String()
}

// BenchmarkRun: one agency sends 10,000 bets (batches of 100, 64 in
// flight) over loopback and gets its winners.
func BenchmarkRun(b *testing.B) {
	bets := genBets(50, 10000)
	for _, protocol := range []string{ProtocolSeed, ProtocolLoteria} {
		b.Run(protocol, func(b *testing.B) {
			addr := ackServer(b)
			c, err := NewClient(Options{Agency: 1, Address: addr, MaxBets: 100, InFlight: 64, Protocol: protocol}, Deps{})
			if err != nil {
				b.Fatal(err)
			}
			s := NewBetsStream(bets)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Run(context.Background(), s); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(bets)*b.N)/b.Elapsed().Seconds(), "bets/s")
		})
	}
}

// BenchmarkPackFullFrames packs generated bets into full 8 KiB batches,
// what the agency does per bet before anything is written.
func BenchmarkPackFullFrames(b *testing.B) {
	bets := genBets(9, 20000)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		pk := &packer{agency: 1, maxBets: 1 << 20, maxFrame: wire.MaxAgencyFrame, src: &sliceSource{bets: bets}}
		hdr := wire.BatchHeader{Agency: 1, Seq: 1, HasFrom: true, Round: 1, Traceparent: []byte(traceparentTemplate)}
		for {
			c, err := pk.next(hdr)
			if err != nil {
				break
			}
			n += c
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "bets/s")
}
