// Package wire holds the Lotería protocol as bytes on a stream: the
// length-prefixed frame, the batch payload with its optional extensions,
// acks, END and the winners message. It knows nothing of sockets, storage
// or metrics; see docs/PROTOCOL.md for the protocol in words.
package wire

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// HeaderLen is the length of a frame header: the payload length as
// zero-padded ASCII decimal digits.
const HeaderLen = 8

// MaxHeaderValue is the largest length eight decimal digits can say.
const MaxHeaderValue = 99_999_999

// MaxAgencyFrame is the most an agency sends in one frame, header included.
const MaxAgencyFrame = 8192

// Errors a frame reader returns. Each ends the conversation: after one of
// them the stream is no longer at a frame boundary.
var (
	ErrBadHeader      = errors.New("frame header is not 8 decimal digits")
	ErrFrameTooLarge  = errors.New("frame larger than the limit")
	ErrTruncatedFrame = errors.New("connection closed in the middle of a frame")
)

// ParseHeader parses an 8-byte frame header.
func ParseHeader(h []byte) (int, error) {
	if len(h) != HeaderLen {
		return 0, fmt.Errorf("%w: %d bytes", ErrBadHeader, len(h))
	}
	n := 0
	for i, c := range h {
		if c < '0' || c > '9' {
			// Not quoted: out of step with the frames, these bytes may be
			// the middle of a bet line (a name is personal data).
			return 0, fmt.Errorf("%w: byte %d is not a digit", ErrBadHeader, i+1)
		}
		n = n*10 + int(c-'0')
	}
	return n, nil
}

// PutHeader writes n as an 8-digit header into h[:8].
func PutHeader(h []byte, n int) {
	_ = h[HeaderLen-1]
	for i := HeaderLen - 1; i >= 0; i-- {
		h[i] = byte('0' + n%10)
		n /= 10
	}
}

// ReadFrame reads one frame from r and returns its payload. The payload is
// read into buf when it fits, so a caller that passes the previous payload
// back (buf[:0]) reads without allocating. A declared length over max is
// refused before anything is allocated or read.
//
// It returns io.EOF when the stream ends cleanly before a frame starts,
// ErrTruncatedFrame when it ends inside one, ErrBadHeader and
// ErrFrameTooLarge (wrapped) for a header it will not follow, and the
// reader's own error otherwise.
func ReadFrame(r *bufio.Reader, buf []byte, max int) ([]byte, error) {
	size, err := ReadHeader(r, max)
	if err != nil {
		return nil, err
	}
	return ReadPayload(r, buf, size)
}

// ReadHeader reads a frame header and checks the length it declares
// against max. With ReadPayload it lets a caller hold no payload buffer
// while it waits for a frame to start.
func ReadHeader(r *bufio.Reader, max int) (int, error) {
	// Peek keeps the header in the reader's buffer: no allocation.
	h, err := r.Peek(HeaderLen)
	if err != nil {
		if len(h) == 0 && errors.Is(err, io.EOF) {
			return 0, io.EOF
		}
		if errors.Is(err, io.EOF) {
			return 0, fmt.Errorf("%w: %d of %d header bytes", ErrTruncatedFrame, len(h), HeaderLen)
		}
		return 0, err
	}
	size, err := ParseHeader(h)
	if err != nil {
		return 0, err
	}
	r.Discard(HeaderLen)
	if size > max {
		return 0, fmt.Errorf("%w: %d bytes declared, at most %d accepted", ErrFrameTooLarge, size, max)
	}
	return size, nil
}

// ReadPayload reads the size-byte payload that follows a header, into buf
// when it fits.
func ReadPayload(r *bufio.Reader, buf []byte, size int) ([]byte, error) {
	if cap(buf) < size {
		buf = make([]byte, size)
	}
	buf = buf[:size]
	if n, err := io.ReadFull(r, buf); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("%w: %d of %d payload bytes", ErrTruncatedFrame, n, size)
		}
		return nil, err
	}
	return buf, nil
}

// AppendFrame appends payload to dst as one frame.
func AppendFrame(dst, payload []byte) []byte {
	dst = BeginFrame(dst)
	start := len(dst) - HeaderLen
	dst = append(dst, payload...)
	FinishFrame(dst[start:])
	return dst
}

// BeginFrame appends a placeholder header to dst; write the payload after
// it and call FinishFrame on the frame (from its header on).
func BeginFrame(dst []byte) []byte {
	return append(dst, "00000000"...)
}

// FinishFrame fills in the header of frame, whose payload follows it.
func FinishFrame(frame []byte) {
	PutHeader(frame, len(frame)-HeaderLen)
}

// WriteFrame writes payload as one frame: the header, then the payload
// (two writes; hot paths build whole frames with AppendFrame instead).
func WriteFrame(w io.Writer, payload []byte) error {
	var h [HeaderLen]byte
	PutHeader(h[:], len(payload))
	if err := WriteFull(w, h[:]); err != nil {
		return err
	}
	return WriteFull(w, payload)
}

// WriteFull writes all of p, looping over short writes.
func WriteFull(w io.Writer, p []byte) error {
	for len(p) > 0 {
		n, err := w.Write(p)
		if err != nil {
			return err
		}
		if n == 0 {
			return io.ErrShortWrite
		}
		p = p[n:]
	}
	return nil
}
