package wire

import "bytes"

// BetReader walks the bet lines of a batch one at a time, so a caller can
// validate and store each without holding a slot per line: memory stays
// the same whatever count a peer announces.
type BetReader struct {
	rest  []byte
	line  int // payload line of the last bet read (the header is line 1)
	count int // bets the header announced
	seen  int
}

// ReadBatch parses a batch's header line and returns a reader over its
// bet lines. It checks what ParseBatch checks, but line by line: Next
// reports a bad line or a count that does not match when it gets there.
func ReadBatch(payload []byte) (BatchHeader, BetReader, error) {
	var h BatchHeader
	line, rest, _ := bytes.Cut(payload, nl)
	if err := parseHeaderLine(line, &h); err != nil {
		return h, BetReader{}, err
	}
	if h.Count > len(rest)/9+1 {
		return h, BetReader{}, batchErr(1, "header says %d bets but the batch has only %d bytes of bets", h.Count, len(rest))
	}
	return h, BetReader{rest: rest, line: 1, count: h.Count}, nil
}

// Next splits the next bet line into f. It returns false with a nil error
// after the last line, when the count matched.
func (r *BetReader) Next(f *BetFields) (bool, error) {
	if len(r.rest) == 0 {
		if r.seen != r.count {
			return false, batchErr(0, "header announces %d bets but the batch has %d", r.count, r.seen)
		}
		return false, nil
	}
	r.line++
	var line []byte
	line, r.rest, _ = bytes.Cut(r.rest, nl)
	if r.seen == r.count {
		return false, batchErr(r.line, "more bet lines than the %d the header announces", r.count)
	}
	if err := splitBet(line, f); err != nil {
		return false, batchErr(r.line, "%v", err)
	}
	r.seen++
	return true, nil
}

// Line is the payload line of the bet Next returned last (the header is 1).
func (r *BetReader) Line() int { return r.line }
