package agency

import (
	"errors"
	"fmt"
	"io"

	"github.com/loteria/loteria/services/internal/lottery"
	"github.com/loteria/loteria/services/internal/wire"
)

// packer builds batch frames of at most maxBets bets and maxFrame bytes,
// header included, counting bytes (not characters).
type packer struct {
	agency   int
	maxBets  int
	maxFrame int
	src      Source
	index    int64      // stream index of the next bet src yields
	keys     *chunkKeys // records every bet packed (nil: none)

	held    *lottery.Bet // a bet read but left for the next frame
	heldBuf lottery.Bet
	body    []byte
	count   int
	eof     bool
	err     error
}

// batch is one packed frame.
type batch struct {
	frame []byte
	bets  int
	seq   uint64
}

var errBetTooLarge = errors.New("bet does not fit in one frame")

// next gathers the bets of the next batch. hdr is the largest header the
// batch will carry (its extensions sized as they will be sent; Count is set
// here); the frame is built by assemble. It returns io.EOF when no bets
// remain.
func (p *packer) next(hdr wire.BatchHeader) (int, error) {
	p.body = p.body[:0]
	// The frame's size but for the count's digits, which grow with it:
	// the header is measured once a batch, and each line once, as it is
	// appended (it is cut off again when it does not fit).
	hdr.Count = 0
	fixed := wire.HeaderLen + wire.HeaderLineLen(hdr) - 1
	countDigits, nextPow := 1, 10
	n := 0
	for n < p.maxBets {
		bet, err := p.peek()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, err
		}
		if n+1 == nextPow {
			countDigits, nextPow = countDigits+1, nextPow*10
		}
		before := len(p.body)
		p.body = wire.AppendBetLine(p.body, bet.FirstName, bet.LastName, bet.Document, bet.Birthdate, bet.Number)
		if size := fixed + countDigits + len(p.body); size > p.maxFrame {
			p.body = p.body[:before]
			if n == 0 {
				// The bet is described by its place, never by its fields
				// (personal data).
				return 0, fmt.Errorf("%w: the bet at stream index %d needs %d bytes, frames are at most %d", errBetTooLarge, p.index, size, p.maxFrame)
			}
			break
		}
		if p.keys != nil {
			p.keys.put(p.index, bet)
		}
		p.held = nil
		p.index++
		n++
	}
	if n == 0 {
		return 0, io.EOF
	}
	p.count = n
	return n, nil
}

// assemble builds the frame of the batch next gathered, with hdr (no
// longer than the one given to next) as its header.
func (p *packer) assemble(b *batch, hdr wire.BatchHeader) {
	hdr.Count = p.count
	b.frame = wire.BeginFrame(b.frame[:0])
	b.frame = wire.AppendBatchHeader(b.frame, hdr)
	b.frame = append(b.frame, p.body...)
	wire.FinishFrame(b.frame)
	b.bets = p.count
	b.seq = hdr.Seq
}

// more reports whether another bet remains (reading one ahead): false at
// the end of the source. A read error counts as more, so that next
// returns it.
func (p *packer) more() bool {
	_, err := p.peek()
	return !errors.Is(err, io.EOF)
}

func (p *packer) peek() (*lottery.Bet, error) {
	if p.held != nil {
		return p.held, nil
	}
	if p.eof {
		return nil, io.EOF
	}
	if p.err != nil {
		return nil, p.err
	}
	bet, err := p.src.Next()
	if err != nil {
		if errors.Is(err, io.EOF) {
			p.eof = true
		} else {
			p.err = err // a source that failed is not read again
		}
		return nil, err
	}
	p.heldBuf = bet
	p.held = &p.heldBuf
	return p.held, nil
}
