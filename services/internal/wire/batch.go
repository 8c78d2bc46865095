package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"strconv"

	"github.com/loteria/loteria/services/internal/base10"
)

// Field indexes of a bet line.
const (
	FieldFirstName = iota
	FieldLastName
	FieldDocument
	FieldBirthdate
	FieldNumber
	NumFields
)

// BetFields is one bet line split into its fields. The slices point into the
// frame they were parsed from and are valid only while it is.
type BetFields [NumFields][]byte

// Extension keys of the batch header (see docs/PROTOCOL.md).
const (
	ExtSeq         = "seq"
	ExtTraceparent = "traceparent"
	ExtFrom        = "from"
	ExtRound       = "round"
)

// MaxTraceparentLen bounds the traceparent extension (W3C's is 55 bytes).
const MaxTraceparentLen = 128

// AgencyDigits is how many decimal digits an agency id has at most in a
// batch header and a HELLO, so MaxAgency is the largest id the wire
// carries: a setting that names a larger agency can never be sent.
const (
	AgencyDigits = 9
	MaxAgency    = 999_999_999
)

// BatchHeader is the first line of a batch: the seed's two fields and our
// optional extensions.
type BatchHeader struct {
	Agency int
	Count  int
	// Seq is the agency's batch sequence number (1, 2, ...), 0 when absent.
	Seq uint64
	// Traceparent is the W3C trace context of the agency's span, nil when
	// absent. It points into the frame.
	Traceparent []byte
	// From is the stream index of the batch's first bet (the agency's
	// bets numbered from 0 over the store's life), valid when HasFrom.
	// Without it (seed clients) the batch is appended at the mark.
	From    int64
	HasFrom bool
	// Round is the round the agency believes is open, 0 when absent. It
	// is for logs and traces: bets go to the round open when they arrive.
	Round int
}

// BatchError says what is wrong with a batch and on which line of its
// payload (the header is line 1).
type BatchError struct {
	Line int
	Msg  string
}

func (e *BatchError) Error() string {
	if e.Line == 0 {
		return e.Msg
	}
	return "line " + strconv.Itoa(e.Line) + ": " + e.Msg
}

func batchErr(line int, format string, args ...any) error {
	return &BatchError{Line: line, Msg: fmt.Sprintf(format, args...)}
}

// IsEnd reports whether payload is the END message.
func IsEnd(payload []byte) bool { return string(payload) == End }

// ParseBatch splits a batch payload into its header and bet lines, appending
// the bets to dst[:0] so that a caller reusing dst parses without
// allocating. It checks the structure only (header fields, the count, five
// non-empty fields per line); what the fields say is for the caller to judge.
func ParseBatch(payload []byte, dst []BetFields) (BatchHeader, []BetFields, error) {
	dst = dst[:0]
	var h BatchHeader
	line, rest, _ := bytes.Cut(payload, nl)
	if err := parseHeaderLine(line, &h); err != nil {
		return h, dst, err
	}
	// Every bet line has at least 5 fields of 1 byte and 4 separators, so a
	// count the payload cannot hold is refused before looping on it.
	if h.Count > len(rest)/9+1 {
		return h, dst, batchErr(1, "header says %d bets but the batch has only %d bytes of bets", h.Count, len(rest))
	}
	n := 1
	for len(rest) > 0 {
		n++
		line, rest, _ = bytes.Cut(rest, nl)
		if len(dst) == h.Count {
			return h, dst, batchErr(n, "more bet lines than the %d the header announces", h.Count)
		}
		var f BetFields
		if err := splitBet(line, &f); err != nil {
			return h, dst, batchErr(n, "%v", err)
		}
		dst = append(dst, f)
	}
	if len(dst) != h.Count {
		return h, dst, batchErr(0, "header announces %d bets but the batch has %d", h.Count, len(dst))
	}
	return h, dst, nil
}

var nl = []byte{'\n'}

func parseHeaderLine(line []byte, h *BatchHeader) error {
	agency, rest, ok := bytes.Cut(line, semi)
	if !ok {
		return batchErr(1, "header line (%d bytes) has no ';': want <agency>;<bets>", len(line))
	}
	count, rest, hasExt := bytes.Cut(rest, semi)
	var err error
	if h.Agency, err = decimal(agency, AgencyDigits); err != nil {
		return batchErr(1, "agency is not a number: %s", describeDecimal(agency, AgencyDigits))
	}
	if h.Count, err = decimal(count, 9); err != nil {
		return batchErr(1, "bet count is not a number: %s", describeDecimal(count, 9))
	}
	for hasExt {
		var kv []byte
		kv, rest, hasExt = bytes.Cut(rest, semi)
		k, v, _ := bytes.Cut(kv, eq)
		switch string(k) {
		case ExtSeq:
			seq, err := strconv.ParseUint(string(v), 10, 64)
			if err != nil {
				return batchErr(1, "extension seq is not a number: %s", describeDecimal(v, 20))
			}
			h.Seq = seq
		case ExtTraceparent:
			if len(v) > MaxTraceparentLen {
				return batchErr(1, "extension traceparent longer than %d bytes", MaxTraceparentLen)
			}
			h.Traceparent = v
		case ExtFrom:
			from, err := decimal(v, 15)
			if err != nil {
				return batchErr(1, "extension from is not a bet index: %s", describeDecimal(v, 15))
			}
			h.From, h.HasFrom = int64(from), true
		case ExtRound:
			r, err := decimal(v, 9)
			if err != nil {
				return batchErr(1, "extension round is not a round number: %s", describeDecimal(v, 9))
			}
			h.Round = r
		}
		// Unknown keys are ignored so that later extensions stay compatible.
	}
	return nil
}

var (
	semi = []byte{';'}
	eq   = []byte{'='}
)

var errFields = errors.New("want 5 fields <name>;<surname>;<document>;<yyyy-mm-dd>;<number>")

// splitBet cuts a bet line at its ';'s, found eight bytes at a time.
func splitBet(line []byte, f *BetFields) error {
	k, from := 0, 0 // fields cut so far; where the next one starts
	cut := func(j int) bool {
		if k == NumFields-1 {
			return false
		}
		f[k], from = line[from:j], j+1
		k++
		return true
	}
	i := 0
	for ; i+8 <= len(line); i += 8 {
		for m := semis(binary.LittleEndian.Uint64(line[i:])); m != 0; m &= m - 1 {
			if !cut(i + bits.TrailingZeros64(m)>>3) {
				return fmt.Errorf("more than 5 fields: %w", errFields)
			}
		}
	}
	for ; i < len(line); i++ {
		if line[i] == ';' && !cut(i) {
			return fmt.Errorf("more than 5 fields: %w", errFields)
		}
	}
	if k < NumFields-1 {
		return fmt.Errorf("%d fields: %w", k+1, errFields)
	}
	f[k] = line[from:]
	for i, v := range f {
		if len(v) == 0 {
			return fmt.Errorf("empty %s", fieldNames[i])
		}
	}
	return nil
}

// semis has the top bit of exactly the bytes of x that are ';' (a
// zero-byte test of x^";;;;;;;;" in which no borrow crosses bytes).
func semis(x uint64) uint64 {
	const low7 = 0x7f7f7f7f7f7f7f7f
	v := x ^ 0x3b3b3b3b3b3b3b3b
	return ^((v&low7 + low7) | v | low7)
}

var fieldNames = [NumFields]string{"first name", "last name", "document", "birthdate", "number"}

// decimal parses 1..maxDigits ASCII digits.
func decimal(b []byte, maxDigits int) (int, error) {
	if len(b) == 0 || len(b) > maxDigits {
		return 0, errors.New("not a number")
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, errors.New("not a number")
		}
		n = n*10 + int(c-'0')
	}
	return n, nil
}

// describeDecimal says why b is not 1..maxDigits ASCII digits without
// quoting it: the bytes come from the network and, in a malformed batch,
// may be a bet's personal data.
func describeDecimal(b []byte, maxDigits int) string {
	if len(b) == 0 {
		return "it is empty"
	}
	for i, c := range b {
		if c < '0' || c > '9' {
			return "byte " + strconv.Itoa(i+1) + " of " + strconv.Itoa(len(b)) + " is not a digit 0-9"
		}
	}
	if len(b) > maxDigits {
		return strconv.Itoa(len(b)) + " digits, at most " + strconv.Itoa(maxDigits)
	}
	return "out of range"
}

// HeaderLineLen is the length of a batch header line (newline included) as
// AppendBatchHeader writes it, so a packer can size frames exactly.
func HeaderLineLen(h BatchHeader) int {
	n := digits(uint64(h.Agency)) + 1 + digits(uint64(h.Count)) + 1
	if h.Seq != 0 {
		n += len(";"+ExtSeq+"=") + digits(h.Seq)
	}
	if h.HasFrom {
		n += len(";"+ExtFrom+"=") + digits(uint64(h.From))
	}
	if h.Round != 0 {
		n += len(";"+ExtRound+"=") + digits(uint64(h.Round))
	}
	if len(h.Traceparent) != 0 {
		n += len(";"+ExtTraceparent+"=") + len(h.Traceparent)
	}
	return n
}

// AppendBatchHeader appends the header line of a batch.
func AppendBatchHeader(dst []byte, h BatchHeader) []byte {
	dst = strconv.AppendInt(dst, int64(h.Agency), 10)
	dst = append(dst, ';')
	dst = strconv.AppendInt(dst, int64(h.Count), 10)
	if h.Seq != 0 {
		dst = append(dst, ";"+ExtSeq+"="...)
		dst = strconv.AppendUint(dst, h.Seq, 10)
	}
	if h.HasFrom {
		dst = append(dst, ";"+ExtFrom+"="...)
		dst = strconv.AppendInt(dst, h.From, 10)
	}
	if h.Round != 0 {
		dst = append(dst, ";"+ExtRound+"="...)
		dst = strconv.AppendInt(dst, int64(h.Round), 10)
	}
	if len(h.Traceparent) != 0 {
		dst = append(dst, ";"+ExtTraceparent+"="...)
		dst = append(dst, h.Traceparent...)
	}
	return append(dst, '\n')
}

// BetLineLen is the length of a bet line (newline included).
func BetLineLen(first, last, document, birthdate string, number int) int {
	return len(first) + len(last) + len(document) + len(birthdate) + digits(uint64(number)) + 5
}

// AppendBetLine appends one bet line.
func AppendBetLine(dst []byte, first, last, document, birthdate string, number int) []byte {
	dst = append(dst, first...)
	dst = append(dst, ';')
	dst = append(dst, last...)
	dst = append(dst, ';')
	dst = append(dst, document...)
	dst = append(dst, ';')
	dst = append(dst, birthdate...)
	dst = append(dst, ';')
	dst = base10.Append(dst, number)
	return append(dst, '\n')
}

func digits(n uint64) int {
	d := 1
	for n >= 10 {
		n /= 10
		d++
	}
	return d
}
