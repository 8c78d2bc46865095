package wire

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Fixed payloads of the protocol.
const (
	End          = "END"
	AckSuccess   = "success;Batch stored successfully."
	ackErrPrefix = "error;"
	NoWinners    = "NO_WINNERS"
)

// AppendErrorAck appends the payload of an error ack. Newlines in msg are
// replaced so the message stays one line.
func AppendErrorAck(dst []byte, msg string) []byte {
	dst = append(dst, ackErrPrefix...)
	for i := 0; i < len(msg); i++ {
		c := msg[i]
		if c == '\n' || c == '\r' {
			c = ' '
		}
		dst = append(dst, c)
	}
	return dst
}

// Codes of error acks. Our central starts every error message with one,
// "error;<code>: <message>", so that an agency can tell what to do without
// reading prose; to a seed client it is part of the message.
const (
	CodeMalformed    = "malformed"     // the batch is not <agency>;<n> and n bet lines
	CodeInvalid      = "invalid"       // a bet broke a validation rule; nothing of the batch was stored
	CodeAgency       = "agency"        // the batch names an agency this connection is not
	CodeGap          = "gap"           // the batch starts past the agency's mark
	CodeConflict     = "conflict"      // two connections sent for one agency at once
	CodeClosed       = "closed"        // no round takes bets any more (the draw was held)
	CodeEnded        = "ended"         // the agency already sent END in the open round
	CodeUnnamed      = "unnamed"       // END from a connection that never said which agency it is
	CodeBusy         = "busy"          // the central is at a connection limit: try again later
	CodeConnected    = "connected"     // the agency already has a live connection
	CodeShuttingDown = "shutting_down" // the central is stopping: try again later
	CodeStoreFailed  = "store_failed"  // the central's store failed: nothing was stored
	CodeFingerprint  = "fingerprint"   // the agency's stream differs from the one it sent before
	CodeRound        = "round"         // a HELLO asked for a round that does not exist yet
	CodeProtocol     = "protocol"      // a framing error: the connection closes
	CodeVersion      = "version"       // a HELLO the central cannot speak
	CodeTLS          = "tls"           // plaintext sent to the central's TLS port
)

// KnownCode reports whether code is one of the codes above: only those
// are ever shown (a peer's unknown "code" is its own words).
func KnownCode(code string) bool {
	switch code {
	case CodeMalformed, CodeInvalid, CodeAgency, CodeGap, CodeConflict, CodeClosed, CodeEnded, CodeUnnamed,
		CodeBusy, CodeConnected, CodeShuttingDown, CodeStoreFailed, CodeFingerprint, CodeRound, CodeProtocol, CodeVersion,
		CodeTLS:
		return true
	}
	return false
}

// ShownCode is the code as it may be logged: itself when known, else
// "unknown" (or "" when there is none).
func (e *AckError) ShownCode() string {
	switch {
	case e.Code == "" || KnownCode(e.Code):
		return e.Code
	}
	return "unknown"
}

// Retryable reports whether an error ack with this code clears by itself:
// the agency should reconnect after a backoff, resume and go on.
func Retryable(code string) bool {
	switch code {
	case CodeBusy, CodeConnected, CodeShuttingDown, CodeStoreFailed, CodeConflict, CodeGap:
		return true
	}
	return false
}

// AppendCodedError appends the payload of an error ack with its code:
// "error;<code>: <msg>".
func AppendCodedError(dst []byte, code, msg string) []byte {
	return AppendErrorAck(dst, code+": "+msg)
}

// ErrAckRejected is wrapped by the error ParseAck returns for an error ack,
// whatever it answered (a batch, a HELLO, an END): the caller says which.
var ErrAckRejected = errors.New("the central answered with an error")

// AckError is an error ack: Code is "" when the message carries none (a
// seed server's).
//
// Its Error never repeats Msg: the text comes from the peer, which may
// quote a bet's fields (personal data) however ours describes them, so
// what is logged or printed is the code, the message's size and the line
// of the batch it names.
type AckError struct {
	Code string
	Msg  string // the whole message after "error;": the peer's words, never logged
}

func (e *AckError) Error() string {
	var b strings.Builder
	b.WriteString(ErrAckRejected.Error())
	switch {
	case e.Code == "":
		b.WriteString(" (no code")
	case KnownCode(e.Code):
		b.WriteString(" (code ")
		b.WriteString(e.Code)
	default:
		b.WriteString(" (a code this agency does not know, ")
		b.WriteString(strconv.Itoa(len(e.Code)))
		b.WriteString(" bytes")
	}
	if n, ok := e.Line(); ok {
		b.WriteString(", line ")
		b.WriteString(strconv.Itoa(n))
	}
	b.WriteString(", a ")
	b.WriteString(strconv.Itoa(len(e.Msg)))
	b.WriteString("-byte message not shown: a central's words may quote personal data)")
	return b.String()
}

// Line is the line of the batch the message names ("<code>: line N: ..."),
// when it names one.
func (e *AckError) Line() (int, bool) {
	m := e.Msg
	if e.Code != "" {
		m = strings.TrimPrefix(m, e.Code+": ")
	}
	rest, ok := strings.CutPrefix(m, "line ")
	if !ok {
		return 0, false
	}
	end := 0
	for end < len(rest) && end < 9 && rest[end] >= '0' && rest[end] <= '9' {
		end++
	}
	if end == 0 || end == len(rest) || rest[end] != ':' {
		return 0, false
	}
	n, err := strconv.Atoi(rest[:end])
	if err != nil || n < 1 {
		return 0, false
	}
	return n, true
}

// Unwrap makes errors.Is(err, ErrAckRejected) hold.
func (e *AckError) Unwrap() error { return ErrAckRejected }

// ParseAck reads an ack payload: nil for success, an *AckError (which
// wraps ErrAckRejected) for an error ack, and a plain error for anything
// else. A v1 ack may carry ";key=value" fields after the success text;
// they are ignored.
func ParseAck(p []byte) error {
	switch {
	case string(p) == AckSuccess:
		return nil
	case bytes.HasPrefix(p, []byte("success;")):
		return nil // a different wording of success is still success
	case bytes.HasPrefix(p, []byte(ackErrPrefix)):
		return parseAckError(p[len(ackErrPrefix):])
	}
	// Not quoted: out of step, the payload may be a winners list (DNIs).
	return fmt.Errorf("unexpected ack: %d bytes that start with neither %q nor %q", len(p), "success;", ackErrPrefix)
}

func parseAckError(msg []byte) *AckError {
	e := &AckError{Msg: string(msg)}
	if i := bytes.Index(msg, []byte(": ")); i > 0 {
		code := msg[:i]
		for _, c := range code {
			if (c < 'a' || c > 'z') && c != '_' {
				return e
			}
		}
		e.Code = string(code)
	}
	return e
}

// AppendWinners appends the winners payload for one agency's DNIs.
func AppendWinners(dst []byte, dnis []string) []byte {
	if len(dnis) == 0 {
		return append(dst, NoWinners...)
	}
	for i, d := range dnis {
		if i > 0 {
			dst = append(dst, ';')
		}
		dst = append(dst, d...)
	}
	return dst
}

// ParseWinners reads a winners payload, the seed's or a v1 one (see
// ParseWinnersMessage, which also returns the round). An error ack in its
// place is returned as an error (an *AckError).
func ParseWinners(p []byte) ([]string, error) {
	w, err := ParseWinnersMessage(p)
	return w.DNIs, err
}

func parseWinnerList(p []byte) ([]string, error) {
	s := string(p)
	switch {
	case s == NoWinners:
		return []string{}, nil
	case strings.HasPrefix(s, ackErrPrefix):
		e := parseAckError(p[len(ackErrPrefix):])
		return nil, fmt.Errorf("central answered END with an error: %w", e)
	case s == "":
		return nil, errors.New("empty winners message")
	}
	// Errors say which DNI and byte, never the DNI: it is personal data.
	dnis := strings.Split(s, ";")
	for k, d := range dnis {
		if d == "" {
			return nil, fmt.Errorf("winners message has an empty DNI (number %d of %d)", k+1, len(dnis))
		}
		for i := 0; i < len(d); i++ {
			if d[i] < '0' || d[i] > '9' {
				return nil, fmt.Errorf("winners message has a DNI that is not decimal (number %d of %d, byte %d)", k+1, len(dnis), i+1)
			}
		}
	}
	return dnis, nil
}
