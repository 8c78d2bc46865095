package central

import (
	"time"

	"github.com/loteria/loteria/observability"
	"github.com/loteria/loteria/services/internal/store"
	"github.com/loteria/loteria/services/internal/wire"
)

// The rows of a frame of MaxFrameLimit bytes fit the store's bound on one
// batch (a negative array length here does not compile).
var _ [store.DefaultMaxGroupBytes - rowsPerPayload*MaxFrameLimit]struct{}

// Every limit of the central, in one place. Settings override the ones
// with a Config field; the others are fixed.
const (
	DefaultPort    = 12345 // plaintext (seed) listener
	DefaultTLSPort = 12346 // mutual-TLS listener

	// DefaultMaxFrame bounds a frame's payload; checked on the header,
	// before anything is allocated or read.
	DefaultMaxFrame = 64 << 10
	// MaxFrameLimit is the most MAX_FRAME_BYTES may be: a batch's rows
	// are under rowsPerPayload times its payload, and the store takes at
	// most store.DefaultMaxGroupBytes of rows in one batch (a larger one
	// is refused with store_failed, which agencies retry for ever).
	MaxFrameLimit = 1 << 20
	// DefaultIdleTimeout drops a peer silent this long while a frame is
	// due. Agencies waiting at the barrier are not idle: they are watched
	// for departure instead.
	DefaultIdleTimeout = 60 * time.Second
	// DefaultHandshakeTimeout bounds the TLS handshake and, on either
	// listener, the wait for a connection's first frame: a peer that
	// connects and says nothing holds a slot only this long.
	DefaultHandshakeTimeout = 10 * time.Second
	// DefaultMaxConnections caps the connections served at once; it is
	// lowered at start to what RLIMIT_NOFILE allows.
	DefaultMaxConnections = 20000
	// DefaultShutdownTimeout bounds the graceful shutdown.
	DefaultShutdownTimeout = 10 * time.Second
	// DefaultMaxPipeline bounds one connection's batches between read and
	// ack. It matches the agency's default window (batch.inFlight 1024):
	// a central that reads fewer ahead than the agency has in flight leaves
	// the rest in its socket and closes the TCP window on every commit
	// (docs/BENCHMARKS.md, section 1). The in-flight budget bounds the
	// bytes and, through the charge every queued batch pays, the batches
	// waiting across connections; the queue itself (8 KiB at 1,024) comes
	// from a pool while batches wait, and an idle connection holds none.
	DefaultMaxPipeline = 1024
	// DefaultInflightBytes bounds, across all connections, the bytes held
	// for batches between their header being read and their ack written
	// (payload buffers, then encoded rows).
	DefaultInflightBytes = 256 << 20
	// anonShare: connections that have not said which agency they are
	// share 1/anonShare of the in-flight budget, apart from the agencies'.
	anonShare = 4
	// connShareDiv: one agency's connection may hold at most
	// 1/connShareDiv of the agencies' pool (16 MiB of 256 MiB; our
	// agency's window of 1,024 full frames needs about 10 MiB).
	connShareDiv = 16
	// anonMaxFrame bounds their frames: what comes first is a HELLO or a
	// seed client's batch, at most MaxAgencyFrame bytes.
	anonMaxFrame = wire.MaxAgencyFrame
	// anonFreeFrame: their frames up to this size pay no budget (a HELLO
	// is a few hundred bytes), so an agency can always name itself.
	anonFreeFrame = 1 << 10

	// DefaultStatusLogInterval is how often the central names, in its log,
	// the agencies a round is still waiting for.
	DefaultStatusLogInterval = 30 * time.Second

	// TCP keepalive: a vanished peer (cable, crashed host) is found in
	// keepAliveIdle + keepAliveCount·keepAliveInterval = 30 s, well under
	// the idle timeout, so a reconnecting agency is not locked out of its
	// own id for a minute.
	keepAliveIdle     = 15 * time.Second
	keepAliveInterval = 5 * time.Second
	keepAliveCount    = 3

	// fdReserve is how many file descriptors the connection cap leaves
	// for the store, listeners and logs, and the metrics server's own (it
	// holds at most observability.HTTPMaxConns). An evicted connection's
	// descriptor is closed by the time closeEvicted returns.
	fdReserve = 64 + observability.HTTPMaxConns

	// trickleAfter: an unnamed connection whose frame has held its charge
	// of the anonymous budget this long while its payload arrives may
	// lose it to a frame that finds the budget spent. An 8 KiB frame this
	// slow comes at under 32 kbit/s; one that comes whole is read in a
	// moment.
	trickleAfter = 2 * time.Second

	// maxEvicting bounds the evicted connections whose goroutines have not
	// yet ended: beyond it, a new connection at the cap is refused (busy)
	// rather than evict another. A flood that evicted about 900
	// connections a second on two cores had up to 53 still ending.
	maxEvicting = 256

	// readBufferSize is a busy connection's read buffer; an idle one
	// returns it to a pool.
	readBufferSize = 4096

	// pooledCap: larger buffers are left to the GC rather than pooled.
	pooledCap = 64 << 10

	// replaceWait bounds how long a newer authenticated connection waits
	// for the older one of the same agency to finish.
	replaceWait = 5 * time.Second
)

// bufClasses are the pooled buffer size classes, so a small batch does
// not pin a large buffer while it waits for the disk.
var bufClasses = [...]int{2 << 10, 16 << 10, 64 << 10}
