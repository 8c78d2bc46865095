// Package ledger is the contract between the central and the storage that
// keeps its bets and the journal of what happened to them: which bets of
// each agency are stored (its high-water mark), who sent END in which
// round, where each round was cut, and each round's draw.
//
// The central talks to storage only through Ledger, so the package that
// serves agencies knows nothing of files or CSV, and another backend (a
// replicated one) can take the file store's place. The file store
// (services/internal/store) implements it; services/cmd/central wires the
// two together.
//
// # Streams, marks and rounds
//
// Every agency sends one stream of bets over the ledger's life. A bet's
// index is its position in that stream, from 0, whatever the batches,
// connections or rounds it travelled in. The agency's mark is the index
// of the first bet the ledger has not taken yet: a batch that starts below
// the mark is (partly) a resend and only its bets at or past the mark are
// stored. Seed clients send no index; their batches are appended at the
// mark (AtMark).
//
// Rounds are cut by the central: every entry is recorded in the round open
// when it was queued, and CloseRound moves the ledger to the next round.
// Round r's bets are the data between round r-1's cut and round r's.
//
// # Receipts
//
// Every operation that changes the ledger is queued in order and answered
// with a Receipt, which completes once the entry is durable (or failed).
// Entries complete in the order they were queued.
package ledger

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"strconv"
)

// AtMark, as a batch's start index, appends the batch at the agency's
// mark: for seed clients, whose batches carry no index.
const AtMark int64 = -1

// Bet is one validated bet, its fields pointing into the frame it came in.
// Validated means it passed lottery.Rules: the store writes its fields as
// they are, quoting only a name that holds a '"', so a field with a comma
// or a line break would break its row.
type Bet struct {
	FirstName []byte
	LastName  []byte
	Document  []byte
	Birthdate []byte
	Number    int
}

// CloseReason says what closed a round.
type CloseReason uint8

// Reasons a round closes.
const (
	CloseBarrier CloseReason = 1 + iota // every agency sent END
	CloseCutoff                         // the ticket cut-off time passed
	CloseTimeout                        // the barrier timeout passed after the first END
)

func (r CloseReason) String() string {
	switch r {
	case CloseBarrier:
		return "barrier"
	case CloseCutoff:
		return "cutoff"
	case CloseTimeout:
		return "timeout"
	}
	return fmt.Sprintf("reason(%d)", uint8(r))
}

// Draw is a round's draw as the journal keeps it: written before any of
// its winners is sent, so a restarted central answers the same.
type Draw struct {
	Round   int
	Number  int    // the winning number
	Bets    int64  // bets in the round
	Winners int    // winning bets in the round
	Digest  []byte // WinnersDigest of the winners, in stored order
}

// Ledger is what the central needs of its storage. Its methods are safe
// for concurrent use.
type Ledger interface {
	// Recovered is what the ledger held when it was opened. The central
	// rebuilds its rounds, barrier and winners from it; it is not updated
	// afterwards.
	Recovered() *Recovery

	// Agency is an agency's state now. Mark is the durable mark: every
	// bet below it is stored (or was refused), so an agency that resumes
	// there loses nothing, and resending what is in flight is harmless.
	Agency(agency int) AgencyState

	// Claim binds agency's stream to fingerprint: the first claim is
	// recorded; a later one with another fingerprint fails with
	// ErrFingerprint, so a different file under the same id is an error
	// rather than a silent skip.
	Claim(agency int, fingerprint string) (*Receipt, error)

	// Begin starts a batch of n bets of agency whose first bet has stream
	// index from (AtMark: at the mark). A batch that starts past the mark
	// fails with a *GapError naming the expected index. The caller then
	// Adds the batch's bets in order and Submits or Rejects it. One
	// agency's batches are begun and submitted one at a time, in order.
	Begin(agency int, from int64, n int) (Batch, error)

	// End records the agency's END in the open round, after every batch
	// of it queued before. Receipt.Round says which round that is.
	End(agency int) (*Receipt, error)

	// CloseRound cuts the open round after everything queued before it
	// and opens the next. Receipt.Round is the round closed, Receipt.Pos
	// its cut (the data offset where the next round starts), and
	// Receipt.Stored the bets the closed round holds. An END of agency 0
	// is an anonymous END (a seed client that never named itself, where
	// the central allows it).
	CloseRound(reason CloseReason) (*Receipt, error)

	// RecordDraw records a closed round's draw.
	RecordDraw(d Draw) (*Receipt, error)

	// Scan calls fn for every stored bet of a closed or open round, in
	// stored order, up to what is durable. document is valid only during
	// the call.
	Scan(round int, fn func(agency int, document []byte, number int) error) error

	// Failed is nil while the ledger works; after the first write or sync
	// failure it is that failure, for good (fail-stop): every later
	// operation (Scan too) fails with an error wrapping ErrFailed.
	Failed() error

	// Close waits for what is queued and releases the ledger. It does
	// not sync again after a failure.
	Close() error
}

// Batch is one batch on its way into the ledger.
type Batch interface {
	// Add takes the next bet of the batch, in stream order. Bets below
	// the agency's mark (a resend) are skipped.
	Add(b Bet)
	// New is how many of the batch's bets are not stored yet (n minus
	// those below the mark).
	New() int
	// Bytes is how much memory the batch holds so far.
	Bytes() int
	// Submit queues the batch; its receipt completes once every new bet
	// is durable. A batch wholly below the mark completes once the copy
	// already queued is durable, and stores nothing. All n bets announced
	// at Begin must have been added (those below the mark too); otherwise
	// Submit fails and stores nothing.
	Submit() (*Receipt, error)
	// Reject records that the central refused the batch (a bet failed
	// validation): nothing of it is stored and the mark moves past it,
	// so the agency's later batches still fit.
	Reject() (*Receipt, error)
	// Discard drops the batch, recording nothing. After Submit or Reject
	// (even a failed one) it does nothing.
	Discard()
}

// AgencyState is what the ledger knows of one agency.
type AgencyState struct {
	Mark        int64  // durable high-water mark
	Rejected    int64  // bets refused by the central (the mark moved past them)
	Fingerprint string // of its stream, "" when it never claimed one
	LastEnd     End    // its last END (Round 0: none)
}

// End is one END as the journal keeps it.
type End struct {
	Round  int
	Agency int
	Mark   int64 // the agency's mark when it sent END
}

// Recovery is the ledger's state when it was opened.
type Recovery struct {
	// Round is the open round (1 for a new ledger).
	Round int
	// Rounds are the closed rounds, oldest first (Rounds[i].Round == i+1).
	Rounds []ClosedRound
	// Ends are the ENDs recorded in the open round, one per agency (a
	// second END of an agency in a round replaces its first), in the order
	// of their first; anonymous ENDs (agency 0) are each kept.
	Ends []End
	// Agencies holds every agency the ledger has heard of.
	Agencies map[int]AgencyState
	// Bets is how many bets are stored in all; RoundBets in the open round.
	Bets, RoundBets int64
	// Bytes is the size of the durable data.
	Bytes int64
	// Quarantined is where recovery moved data it could not account for
	// ("" when it moved none), and how many bytes.
	Quarantined      string
	QuarantinedBytes int64
}

// ClosedRound is a round whose sales have closed.
type ClosedRound struct {
	Round  int
	Reason CloseReason
	Start  int64 // data offset of its first bet
	Cut    int64 // data offset past its last bet
	Bets   int64
	Ends   []End // as Recovery.Ends
	Draw   *Draw // nil until the draw is recorded
}

// Receipt is the answer to one queued operation. Its fields are valid
// once Done is closed and Err is nil.
type Receipt struct {
	done chan struct{}
	err  error

	// Round is the round the entry was recorded in (for CloseRound: the
	// round closed; for RecordDraw: the round open when it was queued).
	Round int
	// Pos is where the batch's rows start in the data (batches stored
	// later have larger positions); for CloseRound, the cut.
	Pos int64
	// Stored is how many bets the entry stored.
	Stored int
	// Group describes the group commit that made the entry durable.
	Group GroupInfo
}

// GroupInfo describes one group commit.
type GroupInfo struct {
	Seq     uint64 // commit number since open, from 1 (an entry that needed no write, such as a resend wholly below the mark: the last commit's, 0 if none)
	Batches int    // batches made durable together
	Bytes   int    // data bytes written
}

// NewReceipt is an incomplete receipt, for implementations.
func NewReceipt() *Receipt { return &Receipt{done: make(chan struct{})} }

// Complete ends the receipt with err (nil: durable). Implementations call
// it once, after setting the fields.
func (r *Receipt) Complete(err error) {
	r.err = err
	close(r.done)
}

// Done is closed when the entry is durable or failed.
func (r *Receipt) Done() <-chan struct{} { return r.done }

// Err is the outcome once Done is closed.
func (r *Receipt) Err() error { return r.err }

// Wait blocks until Done and returns Err.
func (r *Receipt) Wait() error {
	<-r.done
	return r.err
}

// Errors of a Ledger. The store wraps them with the cause.
var (
	// ErrFailed: the ledger failed earlier and takes nothing more; the
	// entry was not stored.
	ErrFailed = errors.New("store failed")
	// ErrOutcomeUnknown: a write or sync failed and could not be rolled
	// back: the entry may or may not be stored. Nobody may be told either
	// way; a restart (and the agency's resume) tells.
	ErrOutcomeUnknown = errors.New("store failed: outcome unknown")
	// ErrFingerprint: the agency claims another stream than the one it
	// sent before.
	ErrFingerprint = errors.New("stream fingerprint differs from the one recorded")
	// ErrConflict: the agency's mark moved between Begin and Submit (two
	// connections sent for one agency at once); nothing was stored.
	ErrConflict = errors.New("agency mark moved while the batch was built")
	// ErrClosed: the ledger is closed.
	ErrClosed = errors.New("store is closed")
)

// GapError refuses a batch that starts past the agency's mark.
type GapError struct {
	Agency   int
	Expected int64 // the mark: the index the next batch must start at or below
	Got      int64
}

func (e *GapError) Error() string {
	return fmt.Sprintf("agency %d: batch starts at bet %d but the next expected is bet %d", e.Agency, e.Got, e.Expected)
}

// Winner is one winning bet.
type Winner struct {
	Agency   int
	Document string
}

// WinnersDigest is the SHA-256 of a round's winners in stored order, each
// as "<agency>,<document>\n": what a DRAW record keeps so that winners
// recomputed after a restart are checked against the ones already sent.
func WinnersDigest(winners []Winner) []byte {
	h := sha256.New()
	var line []byte
	for _, w := range winners {
		line = strconv.AppendInt(line[:0], int64(w.Agency), 10)
		line = append(line, ',')
		line = append(line, w.Document...)
		line = append(line, '\n')
		h.Write(line)
	}
	return h.Sum(nil)
}
