package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/loteria/loteria/services/internal/ledger"
	"github.com/loteria/loteria/services/internal/store/fsys"
)

// The journal's bytes (docs/STORE.md is their specification).
const (
	journalMagic = "LOTJRNL1"
	// journalVersion is the HEADER's version: a journal of another
	// version is refused, not misread. Version 2 added ROWS entries; a
	// version 1 journal (it has none) is read as it is, and gets version
	// 2 HEADERs from then on, which an older loteria refuses.
	journalVersion = 2
	// minJournalVersion is the oldest version this loteria reads.
	minJournalVersion = 1
	// frameLen is a record's framing: length u32le, crc u32le.
	frameLen = 8
	// minBody is the smallest body: type u8, round u32le.
	minBody = 5
	// maxRecordBytes bounds one record's body. The writer ends a group
	// before its COMMIT would outgrow it, so recovery knows how long a
	// torn record can be.
	maxRecordBytes = 1 << 20
)

// Record types.
const (
	recHeader uint8 = 1
	recCommit uint8 = 2
)

// COMMIT entry kinds; 0 ends the list.
const (
	entEnd    uint8 = 0
	kindMark  uint8 = 1
	kindStrm  uint8 = 2
	kindEnd   uint8 = 3
	kindClose uint8 = 4
	kindDraw  uint8 = 5
	kindRows  uint8 = 6
)

// Encoded sizes of the fixed parts.
const (
	headerPayload = 2 + 4 + 4 + 8     // version, maxGroupBytes, maxRecordBytes, created
	commitFixed   = 8 + 8 + 8 + 4     // seq, start, end, dataCRC
	markLen       = 1 + 4 + 8 + 4 + 4 // kind, agency, mark, stored, rejected
	streamFixed   = 1 + 4 + 1         // kind, agency, len (then the bytes)
	endLen        = 1 + 4 + 8         // kind, agency, mark
	closeLen      = 1 + 1 + 8         // kind, reason, cut
	drawLen       = 1 + 4 + 2 + 8 + 4 + 32
	rowsFixed     = 1 + 4 // kind, len (then the rows)
	digestLen     = 32
	// maxFingerprint is the longest fingerprint a STREAM entry holds.
	maxFingerprint = 255
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// header is a HEADER record: written when the journal is created and at
// every open, so recovery knows the bounds of the run that wrote the tail.
type header struct {
	round          uint32
	version        uint16
	maxGroupBytes  uint32
	maxRecordBytes uint32
	created        int64 // unix nanoseconds
}

// jentry is one COMMIT entry.
type jentry struct {
	kind     uint8
	agency   uint32
	mark     uint64 // MARK: new mark; END: mark at END; CLOSE: cut
	stored   uint32
	rejected uint32
	fp       string
	reason   uint8
	draw     ledger.Draw
	// ROWS: the commit's data, whose bets-file write was not synced with
	// it (docs/STORE.md, "One sync a commit"). Decoded, it points into
	// the record's body, rowsAt bytes from the body's start.
	rows   []byte
	rowsAt int
}

// commit is a COMMIT record.
type commit struct {
	round      uint32
	seq        uint64
	start, end uint64
	dataCRC    uint32
	entries    []jentry
	inline     bool // it has a ROWS entry (decoded; not a field of the record)
}

// appendFrame appends a record around body: it reserves the frame, lets
// body append the record's body, and fills the frame in.
func appendFrame(dst []byte, body func([]byte) []byte) []byte {
	at := len(dst)
	dst = append(dst, make([]byte, frameLen)...)
	dst = body(dst)
	b := dst[at+frameLen:]
	binary.LittleEndian.PutUint32(dst[at:], uint32(len(b)))
	binary.LittleEndian.PutUint32(dst[at+4:], crc32.Checksum(b, castagnoli))
	return dst
}

func appendHeader(dst []byte, h header) []byte {
	return appendFrame(dst, func(b []byte) []byte {
		b = append(b, recHeader)
		b = binary.LittleEndian.AppendUint32(b, h.round)
		b = binary.LittleEndian.AppendUint16(b, h.version)
		b = binary.LittleEndian.AppendUint32(b, h.maxGroupBytes)
		b = binary.LittleEndian.AppendUint32(b, h.maxRecordBytes)
		return binary.LittleEndian.AppendUint64(b, uint64(h.created))
	})
}

func appendCommit(dst []byte, c *commit) []byte {
	return appendFrame(dst, func(b []byte) []byte {
		b = append(b, recCommit)
		b = binary.LittleEndian.AppendUint32(b, c.round)
		b = binary.LittleEndian.AppendUint64(b, c.seq)
		b = binary.LittleEndian.AppendUint64(b, c.start)
		b = binary.LittleEndian.AppendUint64(b, c.end)
		b = binary.LittleEndian.AppendUint32(b, c.dataCRC)
		for i := range c.entries {
			b = appendEntry(b, &c.entries[i])
		}
		return append(b, entEnd)
	})
}

func appendEntry(b []byte, e *jentry) []byte {
	b = append(b, e.kind)
	switch e.kind {
	case kindMark:
		b = binary.LittleEndian.AppendUint32(b, e.agency)
		b = binary.LittleEndian.AppendUint64(b, e.mark)
		b = binary.LittleEndian.AppendUint32(b, e.stored)
		b = binary.LittleEndian.AppendUint32(b, e.rejected)
	case kindStrm:
		b = binary.LittleEndian.AppendUint32(b, e.agency)
		b = append(b, uint8(len(e.fp)))
		b = append(b, e.fp...)
	case kindEnd:
		b = binary.LittleEndian.AppendUint32(b, e.agency)
		b = binary.LittleEndian.AppendUint64(b, e.mark)
	case kindClose:
		b = append(b, e.reason)
		b = binary.LittleEndian.AppendUint64(b, e.mark)
	case kindDraw:
		b = binary.LittleEndian.AppendUint32(b, uint32(e.draw.Round))
		b = binary.LittleEndian.AppendUint16(b, uint16(e.draw.Number))
		b = binary.LittleEndian.AppendUint64(b, uint64(e.draw.Bets))
		b = binary.LittleEndian.AppendUint32(b, uint32(e.draw.Winners))
		b = append(b, e.draw.Digest...)
	case kindRows:
		b = binary.LittleEndian.AppendUint32(b, uint32(len(e.rows)))
		b = append(b, e.rows...)
	}
	return b
}

// entryLen is an entry's encoded size.
func entryLen(e *jentry) int {
	switch e.kind {
	case kindMark:
		return markLen
	case kindStrm:
		return streamFixed + len(e.fp)
	case kindEnd:
		return endLen
	case kindClose:
		return closeLen
	case kindDraw:
		return drawLen
	case kindRows:
		return rowsFixed + len(e.rows)
	}
	return 1
}

// errSyntax: a body whose checksum holds but whose contents do not parse.
var errSyntax = errors.New("record does not parse")

// record is one decoded record.
type record struct {
	typ    uint8
	header header
	commit commit
}

// decodeBody parses a record body into rec, reusing its entry slice.
func decodeBody(body []byte, rec *record) error {
	if len(body) < minBody {
		return errSyntax
	}
	rec.typ = body[0]
	round := binary.LittleEndian.Uint32(body[1:])
	p := body[minBody:]
	switch rec.typ {
	case recHeader:
		if len(p) != headerPayload {
			return errSyntax
		}
		rec.header = header{
			round:          round,
			version:        binary.LittleEndian.Uint16(p),
			maxGroupBytes:  binary.LittleEndian.Uint32(p[2:]),
			maxRecordBytes: binary.LittleEndian.Uint32(p[6:]),
			created:        int64(binary.LittleEndian.Uint64(p[10:])),
		}
		return nil
	case recCommit:
		if len(p) < commitFixed+1 {
			return errSyntax
		}
		c := &rec.commit
		c.round = round
		c.seq = binary.LittleEndian.Uint64(p)
		c.start = binary.LittleEndian.Uint64(p[8:])
		c.end = binary.LittleEndian.Uint64(p[16:])
		c.dataCRC = binary.LittleEndian.Uint32(p[24:])
		c.entries = c.entries[:0]
		c.inline = false
		p = p[commitFixed:]
		for {
			if len(p) == 0 {
				return errSyntax
			}
			k := p[0]
			if k == entEnd {
				if len(p) != 1 {
					return errSyntax
				}
				return nil
			}
			e := jentry{kind: k}
			var n int
			switch k {
			case kindMark:
				if len(p) < markLen {
					return errSyntax
				}
				e.agency = binary.LittleEndian.Uint32(p[1:])
				e.mark = binary.LittleEndian.Uint64(p[5:])
				e.stored = binary.LittleEndian.Uint32(p[13:])
				e.rejected = binary.LittleEndian.Uint32(p[17:])
				n = markLen
			case kindStrm:
				if len(p) < streamFixed {
					return errSyntax
				}
				e.agency = binary.LittleEndian.Uint32(p[1:])
				l := int(p[5])
				if l == 0 || len(p) < streamFixed+l {
					return errSyntax
				}
				e.fp = string(p[streamFixed : streamFixed+l])
				n = streamFixed + l
			case kindEnd:
				if len(p) < endLen {
					return errSyntax
				}
				e.agency = binary.LittleEndian.Uint32(p[1:])
				e.mark = binary.LittleEndian.Uint64(p[5:])
				n = endLen
			case kindClose:
				if len(p) < closeLen {
					return errSyntax
				}
				e.reason = p[1]
				e.mark = binary.LittleEndian.Uint64(p[2:])
				n = closeLen
			case kindDraw:
				if len(p) < drawLen {
					return errSyntax
				}
				e.draw = ledger.Draw{
					Round:   int(binary.LittleEndian.Uint32(p[1:])),
					Number:  int(binary.LittleEndian.Uint16(p[5:])),
					Bets:    int64(binary.LittleEndian.Uint64(p[7:])),
					Winners: int(binary.LittleEndian.Uint32(p[15:])),
					Digest:  append([]byte(nil), p[19:19+digestLen]...),
				}
				n = drawLen
			case kindRows:
				if len(p) < rowsFixed {
					return errSyntax
				}
				l := int(binary.LittleEndian.Uint32(p[1:]))
				if l == 0 || len(p)-rowsFixed < l {
					return errSyntax
				}
				e.rows = p[rowsFixed : rowsFixed+l]
				e.rowsAt = len(body) - len(p) + rowsFixed
				n = rowsFixed + l
				c.inline = true
			default:
				return errSyntax
			}
			c.entries = append(c.entries, e)
			p = p[n:]
		}
	}
	return errSyntax
}

// frameAt checks the record framed at b[0:]: it returns the body when the
// record is whole and its checksum holds.
func frameAt(b []byte, maxBody int) ([]byte, bool) {
	if len(b) < frameLen {
		return nil, false
	}
	n := int(binary.LittleEndian.Uint32(b))
	if n < minBody || n > maxBody || len(b)-frameLen < n {
		return nil, false
	}
	body := b[frameLen : frameLen+n]
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(b[4:]) {
		return nil, false
	}
	return body, true
}

// journalReader reads a journal's records in order over ReadAt, holding
// at most a window of maxRecordBytes plus a chunk in memory.
type journalReader struct {
	f    fsys.File
	size int64
	buf  []byte
	boff int64 // file offset of buf[0]
	off  int64 // offset of the next record
}

const readChunk = 1 << 20

// window returns the bytes from off on that are in memory, reading so
// that at least need of them are (fewer at the end of the file). A read
// brings in readChunk more than need, so the next readChunk bytes of
// records need no read: each record's own read of need bytes copied the
// window forward for every record, about 1 MiB a record (Open of a
// journal of 2,000 inline commits of 4.7 KB: 720 ms; docs/STORE.md). It
// holds at most need plus readChunk bytes, and no more than the file has
// left.
func (r *journalReader) window(off int64, need int) ([]byte, error) {
	end := r.boff + int64(len(r.buf))
	if off < r.boff || off > end {
		r.buf, r.boff, end = nil, off, off
	}
	if end-off >= int64(need) || end >= r.size {
		return r.buf[off-r.boff:], nil
	}
	nb := make([]byte, min(int64(need+readChunk), r.size-off))
	k := copy(nb, r.buf[off-r.boff:])
	n, err := r.f.ReadAt(nb[k:], off+int64(k))
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	r.buf, r.boff = nb[:k+n], off
	return r.buf, nil
}

// next decodes the record at r.off into rec. ok is false at the first
// record that is cut short or fails its checksum (r.off then stays at its
// start); err is an I/O error or a record whose checksum holds but that
// does not parse.
func (r *journalReader) next(rec *record) (ok bool, err error) {
	if r.off >= r.size {
		return false, nil
	}
	w, err := r.window(r.off, frameLen+maxRecordBytes)
	if err != nil {
		return false, fmt.Errorf("read the journal: %w", err)
	}
	body, whole := frameAt(w, maxRecordBytes)
	if !whole {
		return false, nil
	}
	if err := decodeBody(body, rec); err != nil {
		return false, fmt.Errorf("journal record at byte %d: its checksum holds but it %w (written by another version of loteria?)", r.off, err)
	}
	r.off += int64(frameLen + len(body))
	return true, nil
}

// laterRecord reports whether a whole record with a holding checksum that
// parses starts anywhere in b after its first byte: when one does, the bad
// record before it is not a torn last write but damage in the middle.
func laterRecord(b []byte) bool {
	found, _ := laterRecordCost(b)
	return found
}

// laterRecordCost is laterRecord, also saying how many bytes it
// checksummed. Before checksumming a candidate it looks at what
// decodeBody would refuse at once: a HEADER has one length, a COMMIT's
// last byte ends its entries, and no other type parses. Checksumming every
// candidate whose length field fits was quadratic in the tail: a torn
// COMMIT of 1,000 agencies' MARKs (kind 1, then the agency's id: lengths
// that fit at many offsets) checksummed 887 MiB, and a tail of every
// fourth byte 16 some 275 GB (14.8 s of Open on a 2-core machine,
// 2026-12-07).
func laterRecordCost(b []byte) (found bool, checksummed int) {
	var rec record
	for i := 1; i+frameLen+minBody <= len(b); i++ {
		n := int(binary.LittleEndian.Uint32(b[i:]))
		if n < minBody || n > maxRecordBytes || n > len(b)-i-frameLen {
			continue
		}
		body := b[i+frameLen : i+frameLen+n]
		switch body[0] {
		case recHeader:
			if n != minBody+headerPayload {
				continue
			}
		case recCommit:
			if n < minBody+commitFixed+1 || body[n-1] != entEnd {
				continue
			}
		default:
			continue
		}
		checksummed += n
		if body, ok := frameAt(b[i:], maxRecordBytes); ok && decodeBody(body, &rec) == nil {
			return true, checksummed
		}
	}
	return false, checksummed
}
