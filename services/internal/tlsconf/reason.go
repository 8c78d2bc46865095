package tlsconf

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
)

// Why a handshake failed, as HandshakeReason names it: a closed set, fit
// for a metric label (loteria_tls_handshake_errors_total{reason}) and a log
// attribute. Server side unless said otherwise; docs/TLS.md has what the
// operator does about each.
const (
	// ReasonExpired: the peer's certificate (or one of its chain) has
	// expired or is not valid yet.
	ReasonExpired = "expired"
	// ReasonUnknownCA: the peer's certificate was not issued by the
	// configured CA (both sides).
	ReasonUnknownCA = "unknown_ca"
	// ReasonBadCertificate: the peer's certificate is from the CA but
	// unusable otherwise, e.g. a central certificate used by an agency (no
	// clientAuth usage) or one that is malformed.
	ReasonBadCertificate = "bad_certificate"
	// ReasonBadIdentity: the agency's certificate is valid but does not
	// name exactly one agency (see AgencyID).
	ReasonBadIdentity = "bad_identity"
	// ReasonNoCertificate: the peer sent no client certificate.
	ReasonNoCertificate = "no_certificate"
	// ReasonWrongHost (client side): the central's certificate is valid
	// but not for the name the agency dialled (or CLI_TLS_SERVER_NAME).
	ReasonWrongHost = "wrong_host"
	// ReasonProtocolVersion: the two sides share no TLS version (the peer
	// offered TLS 1.2 or older only).
	ReasonProtocolVersion = "protocol_version"
	// ReasonTimeout: the handshake did not finish within its deadline.
	ReasonTimeout = "timeout"
	// ReasonNotTLS: the peer does not speak TLS, e.g. a seed agency or an
	// HTTP client talking to the TLS port.
	ReasonNotTLS = "not_tls"
	// ReasonClosed: the peer closed or reset the connection during the
	// handshake, e.g. a TCP port probe.
	ReasonClosed = "closed"
	// ReasonPeerRefused: the peer ended the handshake with an alert: it
	// refused our certificate. On the central: an agency does not accept
	// the central's certificate (wrong host, other CA, expired). On an
	// agency: the central refused the agency's certificate; in TLS 1.3
	// this is the error of the agency's first read, not of its handshake.
	ReasonPeerRefused = "peer_refused"
	// ReasonCanceled: our own context was canceled (shutting down).
	ReasonCanceled = "canceled"
	// ReasonOther: anything else.
	ReasonOther = "other"
)

// Reasons lists every value HandshakeReason returns for a non-nil error,
// so that a metric can start each label at zero.
func Reasons() []string {
	return []string{
		ReasonExpired, ReasonUnknownCA, ReasonBadCertificate, ReasonBadIdentity,
		ReasonNoCertificate, ReasonWrongHost, ReasonProtocolVersion, ReasonTimeout,
		ReasonNotTLS, ReasonClosed, ReasonPeerRefused, ReasonCanceled, ReasonOther,
	}
}

// HandshakeReason names why a TLS handshake (or, on the client, the first
// read after it) failed, from the error crypto/tls returned. It returns ""
// for nil. The order of the checks matters: a verification error is looked
// at before the transport errors it may sit beside.
func HandshakeReason(err error) string {
	if err == nil {
		return ""
	}
	if errors.Is(err, ErrIdentity) {
		return ReasonBadIdentity
	}
	if _, ok := errors.AsType[x509.HostnameError](err); ok {
		return ReasonWrongHost
	}
	if _, ok := errors.AsType[x509.UnknownAuthorityError](err); ok {
		return ReasonUnknownCA
	}
	if ci, ok := errors.AsType[x509.CertificateInvalidError](err); ok {
		if ci.Reason == x509.Expired {
			return ReasonExpired
		}
		return ReasonBadCertificate
	}
	if _, ok := errors.AsType[*tls.CertificateVerificationError](err); ok {
		return ReasonBadCertificate
	}
	if _, ok := errors.AsType[tls.RecordHeaderError](err); ok {
		return ReasonNotTLS
	}
	if op, ok := errors.AsType[*net.OpError](err); ok && op.Op == "remote error" {
		// The alert's type is unexported; its text is the stable part.
		if op.Err != nil && op.Err.Error() == "tls: protocol version not supported" {
			return ReasonProtocolVersion
		}
		return ReasonPeerRefused
	}
	// crypto/tls returns these two as plain errors.New values.
	msg := err.Error()
	switch {
	case strings.Contains(msg, "tls: client didn't provide a certificate"):
		return ReasonNoCertificate
	case strings.Contains(msg, "tls: client offered only unsupported versions"):
		return ReasonProtocolVersion
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return ReasonTimeout
	}
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		return ReasonTimeout
	}
	if errors.Is(err, context.Canceled) {
		return ReasonCanceled
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return ReasonClosed
	}
	return ReasonOther
}
