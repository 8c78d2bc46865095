package agency

import "github.com/loteria/loteria/services/internal/lottery"

// maxKeyedBets bounds the chunk whose bets' keys a run keeps (8 bytes a
// bet: 32 MiB); a larger chunk's winners are checked by reading it again.
const maxKeyedBets = 4 << 20

// chunkKeys remembers, by stream index, the document and number of every
// bet of the chunk the run sent, each in one exact uint64 (betKey), so
// that the central's winners are checked without reading the file again:
// measured, that second pass cost 4.1 ms of CPU per official agency file
// (15,740 bets), this scan some microseconds.
type chunkKeys struct {
	start  int64 // stream index of keys[0]: the chunk's first bet
	keys   []uint64
	lo, hi int64 // the indexes recorded, [lo, hi); lo == hi: none
	broken bool  // a bet that betKey cannot hold, or a gap: not usable
}

const (
	keyNumberBits = 14 // lottery.MaxNumber < 1<<14
	keyDocBits    = 30 // a DNI of at most 9 digits < 1<<30
	keyNumberMask = 1<<keyNumberBits - 1
)

// betKey is a bet's document (its length and value, so "0123" is not
// "123") and number in one word; false when the document is not 1 to
// lottery.MaxDocumentDigits decimal digits or the number out of range.
func betKey(doc string, number int) (uint64, bool) {
	if len(doc) == 0 || len(doc) > lottery.MaxDocumentDigits || number < 0 || number > lottery.MaxNumber {
		return 0, false
	}
	var v uint64
	for i := 0; i < len(doc); i++ {
		c := doc[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	return uint64(len(doc))<<(keyDocBits+keyNumberBits) | v<<keyNumberBits | uint64(number), true
}

// reset starts the keys of the chunk of n bets from stream index start.
func (k *chunkKeys) reset(start, n int64) {
	k.start, k.lo, k.hi, k.broken = start, start, start, n <= 0 || n > maxKeyedBets
	if k.broken {
		k.keys = nil
		return
	}
	if int64(cap(k.keys)) < n {
		k.keys = make([]uint64, n)
	}
	k.keys = k.keys[:n]
}

// put records the bet at stream index idx (sent again: the same bet).
func (k *chunkKeys) put(idx int64, b *lottery.Bet) {
	if k.broken {
		return
	}
	i := idx - k.start
	key, ok := betKey(b.Document, b.Number)
	switch {
	case !ok || i < 0 || i >= int64(len(k.keys)):
		k.broken = true
		return
	case k.lo == k.hi:
		k.lo, k.hi = idx, idx+1
	case idx == k.hi:
		k.hi++
	case idx < k.lo || idx > k.hi:
		k.broken = true // not contiguous with what is recorded
		return
	}
	k.keys[i] = key
}

// whole reports whether every bet of the chunk is recorded.
func (k *chunkKeys) whole() bool {
	return !k.broken && k.lo == k.start && k.hi == k.start+int64(len(k.keys))
}

// match counts how many of dnis are documents of recorded bets playing
// number (any number when numbered is false), each bet matched once over
// all the calls that share won (the stream indexes matched before: a bet
// is in one round, so it wins in one at most).
func (k *chunkKeys) match(dnis []string, numbered bool, number int, won map[int64]struct{}) int {
	left := make(map[uint64]int, len(dnis))
	for _, d := range dnis {
		key, ok := betKey(d, max(number, 0))
		if !ok {
			continue // no bet of ours has such a document
		}
		if !numbered {
			key >>= keyNumberBits
		}
		left[key]++
	}
	matched := 0
	for i, key := range k.keys {
		if numbered {
			if int(key&keyNumberMask) != number {
				continue
			}
		} else {
			key >>= keyNumberBits
		}
		if n := left[key]; n > 0 {
			idx := k.start + int64(i)
			if _, done := won[idx]; done {
				continue
			}
			won[idx] = struct{}{}
			left[key] = n - 1
			matched++
			if matched == len(dnis) {
				break
			}
		}
	}
	return matched
}
