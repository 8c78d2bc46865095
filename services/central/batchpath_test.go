package central_test

import (
	"bufio"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/loteria/loteria/services/central"
	"github.com/loteria/loteria/services/internal/store"
	"github.com/loteria/loteria/services/internal/wire"
)

// BenchmarkBatchPath is the whole batch path inside the central, frame in
// and ack out, over loopback TCP: read, parse, validate, dedupe, encode,
// group commit, ack. One op is one batch; allocs/op are the central's per
// batch plus the client's (a prebuilt frame written, an ack read: none
// per batch after warm-up). "discard" stores nothing (the CPU path);
// "durable" writes and fsyncs (one agency pipelining, so groups are what
// one connection's read-ahead gathers).
func BenchmarkBatchPath(b *testing.B) {
	for _, tc := range []struct {
		name     string
		bets     int
		discard  bool
		inFlight int
	}{
		{"full-8KiB/discard", 0, true, 64},
		{"10-bets/discard", 10, true, 64},
		{"full-8KiB/durable", 0, false, 64},
		{"10-bets/durable/stop-and-wait", 10, false, 1},
	} {
		b.Run(tc.name, func(b *testing.B) {
			h := startCentral(b, central.Config{Agencies: 1, IdleTimeout: time.Hour}, withStoreOptions(store.Options{Discard: tc.discard}))
			nc, err := net.Dial("tcp", h.addr)
			if err != nil {
				b.Fatal(err)
			}
			defer nc.Close()
			frames := prebuiltFrames(tc.bets)
			br := bufio.NewReaderSize(nc, 64<<10)
			acked := make(chan error, 1)
			var bets int
			for _, f := range frames {
				bets += f.bets
			}
			b.ReportAllocs()
			b.ResetTimer()
			window := make(chan struct{}, tc.inFlight)
			go func() {
				buf := make([]byte, 0, 256)
				for i := 0; i < b.N; i++ {
					p, err := wire.ReadFrame(br, buf[:0], 1<<16)
					if err != nil || string(p) != wire.AckSuccess {
						acked <- fmt.Errorf("ack %d: %q %v", i, p, err)
						return
					}
					<-window
				}
				acked <- nil
			}()
			for i := 0; i < b.N; i++ {
				window <- struct{}{}
				if err := wire.WriteFull(nc, frames[i%len(frames)].frame); err != nil {
					b.Fatal(err)
				}
			}
			if err := <-acked; err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			b.ReportMetric(float64(bets)/float64(len(frames))*float64(b.N)/b.Elapsed().Seconds(), "bets/s")
		})
	}
}

type prebuilt struct {
	frame []byte
	bets  int
}

// prebuiltFrames are 16 distinct batches of agency 1 without a stream
// index (appended at the mark, as a seed client's), of n bets each, or
// filling 8 KiB when n is 0.
func prebuiltFrames(n int) []prebuilt {
	var out []prebuilt
	for k := 0; k < 16; k++ {
		payload := fullBatch(1)
		if n > 0 {
			payload = "1;" + fmt.Sprint(n) + "\n" + betLines(1, k*n, n, nil)
		}
		var cnt int
		fmt.Sscanf(payload, "1;%d", &cnt)
		out = append(out, prebuilt{frame: wire.AppendFrame(nil, []byte(payload)), bets: cnt})
	}
	return out
}
