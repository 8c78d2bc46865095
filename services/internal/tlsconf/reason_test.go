package tlsconf_test

import (
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"syscall"
	"testing"

	"github.com/loteria/loteria/services/internal/tlsconf"
)

// The errors a real handshake gives are in TestHandshakes; these are the
// ones a loopback test cannot provoke on demand.
func TestHandshakeReasonTransport(t *testing.T) {
	opErr := func(errno syscall.Errno) error {
		return &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", errno)}
	}
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, ""},
		{"connection reset", opErr(syscall.ECONNRESET), tlsconf.ReasonClosed},
		{"broken pipe", fmt.Errorf("handshake: %w", opErr(syscall.EPIPE)), tlsconf.ReasonClosed},
		{"deadline of a net.Conn", &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}, tlsconf.ReasonTimeout},
		{"TCP timeout", opErr(syscall.ETIMEDOUT), tlsconf.ReasonTimeout},
		{"anything else", errors.New("tls: internal error"), tlsconf.ReasonOther},
	}
	for _, tt := range tests {
		if got := tlsconf.HandshakeReason(tt.err); got != tt.want {
			t.Errorf("%s: HandshakeReason(%v) = %q, want %q", tt.name, tt.err, got, tt.want)
		}
	}
}

func TestReasons(t *testing.T) {
	r := tlsconf.Reasons()
	want := []string{"expired", "unknown_ca", "bad_certificate", "bad_identity", "no_certificate", "wrong_host",
		"protocol_version", "timeout", "not_tls", "closed", "peer_refused", "canceled", "other"}
	if !slices.Equal(r, want) {
		t.Fatalf("Reasons() = %q, want %q", r, want)
	}
	r[0] = "changed"
	if tlsconf.Reasons()[0] != "expired" {
		t.Fatal("Reasons() shares its slice with callers")
	}
}
