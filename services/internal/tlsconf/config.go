// Package tlsconf builds the mutual-TLS configurations of the central and
// the agencies, reads an agency's identity from its certificate, and names
// why a handshake failed.
//
// Both sides speak TLS 1.3 only. The central requires a client certificate
// issued by the configured CA and naming exactly one agency (a URI SAN
// urn:loteria:agency:<id>, see AgencyID); the agency trusts only the
// configured CA for the central's certificate. Files are checked when the
// configuration is built, so a wrong path, a key that does not match its
// certificate, an expired certificate or a certificate of the wrong kind
// stops the program at start with an error naming the file, rather than
// failing every handshake later. docs/TLS.md is the operator's side of it.
package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"slices"
	"time"
)

// ServerConfig is the central's configuration: its certificate and key,
// TLS 1.3 at least, and a client certificate required from every peer,
// verified against the CA certificates in caFile and carrying a valid
// agency identity (the handshake fails otherwise; HandshakeReason says
// bad_identity). After the handshake, PeerAgency gives the agency id.
func ServerConfig(certFile, keyFile, caFile string) (*tls.Config, error) {
	pair, err := loadPair("central", certFile, keyFile, x509.ExtKeyUsageServerAuth)
	if err != nil {
		return nil, err
	}
	pool, err := loadCA(caFile)
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{pair},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		// Runs after the chain is verified: a certificate from our CA that
		// names no agency, or two, is refused in the handshake, so the
		// agency hears why (a bad_certificate alert) before any frame.
		VerifyConnection: func(cs tls.ConnectionState) error {
			if _, err := PeerAgency(cs); err != nil {
				return fmt.Errorf("client certificate: %w", err)
			}
			return nil
		},
	}, nil
}

// ClientConfig is an agency's configuration: its certificate and key (which
// must name exactly one agency), TLS 1.3 at least, and the CA certificates
// in caFile as the only roots for the central's certificate.
//
// serverName, when not empty, is the name the central's certificate must
// carry (a DNS name or IP address in its SANs) whatever host is dialled,
// e.g. "central" when dialling 10.0.0.7. When empty, the dialled host is
// used: dial with tls.Dialer (or tls.Dial), which fills it in from the
// address; tls.Client with an empty ServerName fails.
//
// In TLS 1.3 the client's handshake completes before the central has
// checked the client's certificate: a refusal (expired, unknown CA, no
// identity) reaches the agency as the error of its first read, for which
// HandshakeReason says peer_refused.
func ClientConfig(certFile, keyFile, caFile, serverName string) (*tls.Config, error) {
	pair, err := loadPair("agency", certFile, keyFile, x509.ExtKeyUsageClientAuth)
	if err != nil {
		return nil, err
	}
	if _, err := AgencyID(pair.Leaf); err != nil {
		return nil, fmt.Errorf("agency certificate %s: %w", certFile, err)
	}
	pool, err := loadCA(caFile)
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{pair},
		RootCAs:      pool,
		ServerName:   serverName,
	}, nil
}

// loadPair reads a certificate chain and its private key, and checks that
// the leaf is valid now and may be used for usage.
func loadPair(role, certFile, keyFile string, usage x509.ExtKeyUsage) (tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("reading the %s certificate: %w", role, err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("reading the %s key: %w", role, err)
	}
	chain, err := parseCertificates(certPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("%s certificate %s: %w", role, certFile, err)
	}
	if err := checkKeyFile(keyPEM); err != nil {
		return tls.Certificate{}, fmt.Errorf("%s key %s: %w", role, keyFile, err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		// The certificate and the key parse on their own (checked above),
		// so what is left is a key that is not the certificate's.
		return tls.Certificate{}, fmt.Errorf("%s key %s does not belong to certificate %s (%v): give the key written with that certificate",
			role, keyFile, certFile, err)
	}
	leaf := chain[0]
	if err := checkValidity(leaf, time.Now()); err != nil {
		return tls.Certificate{}, fmt.Errorf("%s certificate %s: %w", role, certFile, err)
	}
	if leaf.IsCA {
		return tls.Certificate{}, fmt.Errorf("%s certificate %s is a CA certificate: give the %s's own certificate, not ca.pem", role, certFile, role)
	}
	if len(leaf.ExtKeyUsage) > 0 && !slices.Contains(leaf.ExtKeyUsage, usage) && !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageAny) {
		return tls.Certificate{}, fmt.Errorf("%s certificate %s is not issued for %s (its extended key usage lacks %s): give the %s's certificate",
			role, certFile, usageText(usage), usageName(usage), role)
	}
	pair.Leaf = leaf
	return pair, nil
}

// loadCA reads the CA certificates peers are verified against.
func loadCA(caFile string) (*x509.CertPool, error) {
	b, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("reading the CA certificate: %w", err)
	}
	cas, err := parseCertificates(b)
	if err != nil {
		return nil, fmt.Errorf("CA certificate %s: %w", caFile, err)
	}
	pool := x509.NewCertPool()
	now := time.Now()
	for i, ca := range cas {
		if !ca.IsCA || !ca.BasicConstraintsValid {
			return nil, fmt.Errorf("CA certificate %s: certificate %d of the file is not a CA certificate: give the CA's certificate (ca.pem)", caFile, i+1)
		}
		if err := checkValidity(ca, now); err != nil {
			return nil, fmt.Errorf("CA certificate %s: certificate %d of the file: %w", caFile, i+1, err)
		}
		pool.AddCert(ca)
	}
	return pool, nil
}

// parseCertificates reads every CERTIFICATE block of a PEM file; it needs
// at least one, and says what the file holds instead when there is none.
func parseCertificates(b []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	var others []string
	for n := 1; ; n++ {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			others = append(others, block.Type)
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("PEM block %d is not a valid X.509 certificate: %w", n, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		if len(others) > 0 {
			return nil, fmt.Errorf("no PEM CERTIFICATE block, only %q: is it a key file?", others)
		}
		return nil, fmt.Errorf("no PEM CERTIFICATE block: the file is not a PEM certificate")
	}
	return certs, nil
}

// checkKeyFile says what is wrong with a key file that has no private key
// tls.X509KeyPair can use, so that errors name the right file.
func checkKeyFile(b []byte) error {
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			return fmt.Errorf("no PEM private key block: give the key file (the ...-key.pem file), not a certificate")
		}
		var err error
		switch block.Type {
		case "PRIVATE KEY":
			_, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			_, err = x509.ParseECPrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			_, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		default:
			continue
		}
		if err != nil {
			return fmt.Errorf("the %s block is not a valid private key: %w", block.Type, err)
		}
		return nil
	}
}

// checkValidity refuses a certificate outside its validity period at now.
func checkValidity(c *x509.Certificate, now time.Time) error {
	switch {
	case now.After(c.NotAfter):
		return fmt.Errorf("expired on %s: issue a new one (bin/certs)", c.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(c.NotBefore):
		return fmt.Errorf("not valid before %s: check this machine's clock, or wait", c.NotBefore.UTC().Format(time.RFC3339))
	}
	return nil
}

func usageText(u x509.ExtKeyUsage) string {
	if u == x509.ExtKeyUsageServerAuth {
		return "a TLS server"
	}
	return "a TLS client"
}

func usageName(u x509.ExtKeyUsage) string {
	if u == x509.ExtKeyUsageServerAuth {
		return "serverAuth"
	}
	return "clientAuth"
}
