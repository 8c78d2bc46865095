package wire

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// The session extension (version 1): an agency that speaks it opens each
// connection with a HELLO frame and reads a WELCOME before sending
// batches. A seed client never sends HELLO and sees no difference; a seed
// server answers HELLO with an error ack, which tells our agency that the
// server speaks only the seed protocol. See docs/PROTOCOL.md.

// Version is the highest session version this package speaks.
const Version = 1

// Message prefixes of the session extension.
const (
	helloPrefix   = "HELLO"
	welcomePrefix = "WELCOME"
	winnersPrefix = "WINNERS"
)

// MaxFingerprintLen bounds a stream fingerprint (lowercase hex).
const MaxFingerprintLen = 64

// Hello is the first frame of a v1 agency.
type Hello struct {
	Version     int    // the highest version the agency speaks
	Agency      int    // the agency it acts for
	Fingerprint string // of its stream: lowercase hex, 1..64 characters
	Round       int    // the round it wants (0: the open one)
	Total       int64  // bets in its stream if known, -1 when not
}

// Welcome is the central's answer to a HELLO.
type Welcome struct {
	Version  int    // the version both will speak on this connection
	Agency   int    // the agency the connection acts for
	Round    int    // the round the connection acts in
	State    string // of that round: RoundOpen, RoundClosed, RoundDrawn
	Mark     int64  // the agency's durable mark: the first bet index the central does not have
	Rejected int64  // bets of the agency the central refused so far
	Ended    bool   // the agency's END for Round is recorded
	LastEnd  int    // the round of the agency's last END, 0 when none
	LastMark int64  // the agency's mark at that END
}

// Round states in a Welcome.
const (
	RoundOpen   = "open"
	RoundClosed = "closed"
	RoundDrawn  = "drawn"
)

// IsHello reports whether payload is a HELLO (batches start with a digit).
func IsHello(payload []byte) bool {
	return bytes.HasPrefix(payload, []byte(helloPrefix)) &&
		(len(payload) == len(helloPrefix) || payload[len(helloPrefix)] == ';')
}

// AppendHello appends a HELLO payload.
func AppendHello(dst []byte, h Hello) []byte {
	dst = append(dst, helloPrefix...)
	dst = appendKV(dst, "v", int64(h.Version))
	dst = appendKV(dst, "agency", int64(h.Agency))
	dst = append(dst, ";fp="...)
	dst = append(dst, h.Fingerprint...)
	if h.Round != 0 {
		dst = appendKV(dst, "round", int64(h.Round))
	}
	if h.Total >= 0 {
		dst = appendKV(dst, "total", h.Total)
	}
	return dst
}

// ParseHello reads a HELLO payload. Unknown keys are ignored.
func ParseHello(p []byte) (Hello, error) {
	h := Hello{Total: -1}
	if !IsHello(p) {
		return h, errors.New("not a HELLO")
	}
	hasVersion := false
	err := eachKV(p[len(helloPrefix):], func(k string, v []byte) error {
		var err error
		switch k {
		case "v":
			h.Version, err = kvInt(k, v, 4)
			hasVersion = true
		case "agency":
			h.Agency, err = kvInt(k, v, AgencyDigits)
		case "round":
			h.Round, err = kvInt(k, v, 9)
		case "total":
			var n int
			n, err = kvInt(k, v, 15)
			h.Total = int64(n)
		case "fp":
			if len(v) == 0 || len(v) > MaxFingerprintLen || !isLowerHex(v) {
				return fmt.Errorf("HELLO fp: want 1 to %d lowercase hex digits", MaxFingerprintLen)
			}
			h.Fingerprint = string(v)
		}
		return err
	})
	if err != nil {
		return h, err
	}
	switch {
	case !hasVersion:
		return h, errors.New("HELLO without a version v=")
	case h.Version < 1:
		return h, fmt.Errorf("HELLO v=%d: version %d is not supported; versions start at 1 (the central speaks 1..%d)", h.Version, h.Version, Version)
	case h.Agency < 1:
		return h, errors.New("HELLO without an agency=")
	case h.Fingerprint == "":
		return h, errors.New("HELLO without a stream fingerprint fp=")
	}
	return h, nil
}

// AppendWelcome appends a WELCOME payload.
func AppendWelcome(dst []byte, w Welcome) []byte {
	dst = append(dst, welcomePrefix...)
	dst = appendKV(dst, "v", int64(w.Version))
	dst = appendKV(dst, "agency", int64(w.Agency))
	dst = appendKV(dst, "round", int64(w.Round))
	dst = append(dst, ";state="...)
	dst = append(dst, w.State...)
	dst = appendKV(dst, "mark", w.Mark)
	dst = appendKV(dst, "rejected", w.Rejected)
	ended := int64(0)
	if w.Ended {
		ended = 1
	}
	dst = appendKV(dst, "ended", ended)
	dst = appendKV(dst, "lastend", int64(w.LastEnd))
	dst = appendKV(dst, "lastmark", w.LastMark)
	return dst
}

// ParseWelcome reads the central's answer to a HELLO: a WELCOME, or an
// error ack (returned as an *AckError).
func ParseWelcome(p []byte) (Welcome, error) {
	var w Welcome
	if bytes.HasPrefix(p, []byte(ackErrPrefix)) {
		return w, parseAckError(p[len(ackErrPrefix):])
	}
	if !bytes.HasPrefix(p, []byte(welcomePrefix)) {
		return w, fmt.Errorf("unexpected answer to HELLO: %d bytes that start with neither %q nor %q", len(p), welcomePrefix, ackErrPrefix)
	}
	err := eachKV(p[len(welcomePrefix):], func(k string, v []byte) error {
		var err error
		var n int
		switch k {
		case "v":
			w.Version, err = kvInt(k, v, 4)
		case "agency":
			w.Agency, err = kvInt(k, v, AgencyDigits)
		case "round":
			w.Round, err = kvInt(k, v, 9)
		case "state":
			w.State = string(v)
		case "mark":
			n, err = kvInt(k, v, 15)
			w.Mark = int64(n)
		case "rejected":
			n, err = kvInt(k, v, 15)
			w.Rejected = int64(n)
		case "ended":
			n, err = kvInt(k, v, 1)
			w.Ended = n == 1
		case "lastend":
			w.LastEnd, err = kvInt(k, v, 9)
		case "lastmark":
			n, err = kvInt(k, v, 15)
			w.LastMark = int64(n)
		}
		return err
	})
	return w, err
}

// Winners is the answer to END.
type Winners struct {
	Round  int // 0 in the seed's format, which does not say
	Number int // the winning number; 0 when not said
	DNIs   []string
}

// AppendWinnersMessage appends the winners payload for a v1 connection:
// "WINNERS;round=<r>;number=<n>" and, on the next line, the seed's list.
func AppendWinnersMessage(dst []byte, w Winners) []byte {
	dst = append(dst, winnersPrefix...)
	dst = appendKV(dst, "round", int64(w.Round))
	dst = appendKV(dst, "number", int64(w.Number))
	dst = append(dst, '\n')
	return AppendWinners(dst, w.DNIs)
}

// ParseWinnersMessage reads a winners payload in the seed's format or the
// v1 one.
func ParseWinnersMessage(p []byte) (Winners, error) {
	var w Winners
	if bytes.HasPrefix(p, []byte(winnersPrefix+";")) {
		head, rest, ok := bytes.Cut(p, nl)
		if !ok {
			return w, errors.New("WINNERS message without its list line")
		}
		err := eachKV(head[len(winnersPrefix):], func(k string, v []byte) error {
			var err error
			switch k {
			case "round":
				w.Round, err = kvInt(k, v, 9)
			case "number":
				w.Number, err = kvInt(k, v, 4)
			}
			return err
		})
		if err != nil {
			return w, err
		}
		p = rest
	}
	dnis, err := parseWinnerList(p)
	w.DNIs = dnis
	return w, err
}

func appendKV(dst []byte, k string, v int64) []byte {
	dst = append(dst, ';')
	dst = append(dst, k...)
	dst = append(dst, '=')
	return strconv.AppendInt(dst, v, 10)
}

// eachKV calls fn for every ";key=value" field of p (which starts with
// ';' or is empty).
func eachKV(p []byte, fn func(k string, v []byte) error) error {
	if len(p) == 0 {
		return nil
	}
	if p[0] != ';' {
		return fmt.Errorf("fields: want ;key=value after the message's name, got %d bytes that do not start with ';'", len(p))
	}
	for _, kv := range bytes.Split(p[1:], semi) {
		k, v, _ := bytes.Cut(kv, eq)
		if err := fn(string(k), v); err != nil {
			return err
		}
	}
	return nil
}

// kvInt reads a key's decimal value. Its error describes a bad value
// and never quotes it: a peer's HELLO (or a central's answer) may carry
// anything, a bet's personal data included, and the error reaches the
// log and the peer.
func kvInt(k string, v []byte, maxDigits int) (int, error) {
	n, err := decimal(v, maxDigits)
	if err != nil {
		return 0, fmt.Errorf("%s= is not a number of at most %d digits: %s", k, maxDigits, describeDecimal(v, maxDigits))
	}
	return n, nil
}

func isLowerHex(b []byte) bool {
	for _, c := range b {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
