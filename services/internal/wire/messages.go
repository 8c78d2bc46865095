package wire

import (
	"bytes"
	"errors"
	"fmt"
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

// ErrAckRejected is wrapped by the error ParseAck returns for an error ack.
var ErrAckRejected = errors.New("central rejected the batch")

// ParseAck reads an ack payload: nil for success, an error wrapping
// ErrAckRejected with the central's message for an error ack, and a plain
// error for anything else.
func ParseAck(p []byte) error {
	switch {
	case string(p) == AckSuccess:
		return nil
	case bytes.HasPrefix(p, []byte("success;")):
		return nil // a different wording of success is still success
	case bytes.HasPrefix(p, []byte(ackErrPrefix)):
		return fmt.Errorf("%w: %s", ErrAckRejected, p[len(ackErrPrefix):])
	}
	return fmt.Errorf("unexpected ack %q", clip(p))
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

// ParseWinners reads a winners payload. An error ack in its place (the
// central could not hold the draw) is returned as an error.
func ParseWinners(p []byte) ([]string, error) {
	s := string(p)
	switch {
	case s == NoWinners:
		return []string{}, nil
	case strings.HasPrefix(s, ackErrPrefix):
		return nil, fmt.Errorf("central answered END with an error: %s", s[len(ackErrPrefix):])
	case s == "":
		return nil, errors.New("empty winners message")
	}
	dnis := strings.Split(s, ";")
	for _, d := range dnis {
		if d == "" {
			return nil, fmt.Errorf("winners message %q has an empty DNI", clip(p))
		}
		for i := 0; i < len(d); i++ {
			if d[i] < '0' || d[i] > '9' {
				return nil, fmt.Errorf("winners message has a DNI that is not decimal: %q", clip([]byte(d)))
			}
		}
	}
	return dnis, nil
}
