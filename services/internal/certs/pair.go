// Package certs mints the certificates of loteria's mutual TLS: a CA, the
// central's server certificate and one client certificate per agency, all
// ECDSA P-256, written as PEM files (Generate), or one at a time in memory
// with any validity (NewCA, Pair.Issue), for tools and tests.
//
// An agency's certificate names it with the URI SAN urn:loteria:agency:<id>
// (tlsconf.AgencyURI); the central's carries its DNS names and IP
// addresses.
package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/loteria/loteria/services/internal/tlsconf"
)

// Pair is a certificate and its private key.
type Pair struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// Files are the paths of a certificate and its key.
type Files struct {
	Cert, Key string
}

// Spec says what certificate to issue.
type Spec struct {
	// CommonName is the subject's CN, for people reading the certificate.
	CommonName string
	// Agency, when > 0, adds the URI SAN naming that agency.
	Agency int
	// URIs are further URI SANs (tests use them for malformed identities).
	URIs []*url.URL
	// Hosts are the DNS names and IP addresses (SANs) of a server
	// certificate.
	Hosts []string
	// NotBefore and NotAfter bound the validity; any order of the two
	// relative to now is allowed (tests issue expired certificates).
	NotBefore, NotAfter time.Time
	// ExtKeyUsage overrides the default: client authentication when Agency
	// or URIs are set, server authentication when Hosts are, both when both
	// are.
	ExtKeyUsage []x509.ExtKeyUsage
}

// NewCA makes a self-signed CA that may sign leaf certificates only (path
// length 0). Only CommonName, NotBefore and NotAfter of spec are used;
// the others must be empty.
func NewCA(spec Spec) (*Pair, error) {
	if spec.Agency != 0 || len(spec.URIs) > 0 || len(spec.Hosts) > 0 || len(spec.ExtKeyUsage) > 0 {
		return nil, errors.New("a CA certificate takes a name and a validity only, no agency, URI, host or key usage")
	}
	if !spec.NotAfter.After(spec.NotBefore) {
		return nil, errors.New("the CA's NotAfter must come after its NotBefore")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating the CA key: %w", err)
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"loteria"}, CommonName: spec.CommonName},
		NotBefore:             spec.NotBefore,
		NotAfter:              spec.NotAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("signing the CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("reading back the CA certificate: %w", err)
	}
	return &Pair{Cert: cert, Key: key}, nil
}

// Issue signs a new leaf certificate, with a fresh P-256 key, for spec.
// p must be a CA (NewCA or Load of a CA's files).
func (p *Pair) Issue(spec Spec) (*Pair, error) {
	if !p.Cert.IsCA {
		return nil, errors.New("the issuing certificate is not a CA")
	}
	if !spec.NotAfter.After(spec.NotBefore) {
		return nil, errors.New("NotAfter must come after NotBefore")
	}
	uris := spec.URIs
	if spec.Agency != 0 {
		u, err := tlsconf.AgencyURI(spec.Agency)
		if err != nil {
			return nil, err
		}
		uris = append([]*url.URL{u}, uris...)
	}
	var dns []string
	var ips []net.IP
	for _, h := range spec.Hosts {
		if err := checkHost(h); err != nil {
			return nil, err
		}
		if ip := net.ParseIP(h); ip != nil {
			ips = append(ips, ip)
		} else {
			dns = append(dns, h)
		}
	}
	usage := spec.ExtKeyUsage
	if usage == nil {
		if len(uris) > 0 {
			usage = append(usage, x509.ExtKeyUsageClientAuth)
		}
		if len(spec.Hosts) > 0 {
			usage = append(usage, x509.ExtKeyUsageServerAuth)
		}
		if len(usage) == 0 {
			return nil, errors.New("a leaf certificate needs an agency, a URI, a host or an explicit key usage")
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating a key: %w", err)
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"loteria"}, CommonName: spec.CommonName},
		NotBefore:             spec.NotBefore,
		NotAfter:              spec.NotAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           usage,
		BasicConstraintsValid: true,
		DNSNames:              dns,
		IPAddresses:           ips,
		URIs:                  uris,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.Cert, key.Public(), p.Key)
	if err != nil {
		return nil, fmt.Errorf("signing the certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("reading back the certificate: %w", err)
	}
	return &Pair{Cert: cert, Key: key}, nil
}

// checkHost accepts an IP address or a DNS name (letters, digits, '-',
// '.', '_' and a leading "*." wildcard).
func checkHost(h string) error {
	if net.ParseIP(h) != nil {
		return nil
	}
	name := strings.TrimPrefix(h, "*.")
	ok := name != "" && len(h) <= 253 && !strings.HasPrefix(name, ".") && !strings.HasSuffix(name, ".") && !strings.Contains(name, "..")
	for i := 0; ok && i < len(name); i++ {
		c := name[i]
		ok = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_'
	}
	if !ok {
		return fmt.Errorf("host %q is neither an IP address nor a DNS name", h)
	}
	return nil
}

// serialNumber is a random 128-bit serial, as RFC 5280 asks (positive, at
// most 20 bytes, unpredictable).
func serialNumber() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("drawing a serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}

// CertPEM is the certificate as a PEM CERTIFICATE block.
func (p *Pair) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.Cert.Raw})
}

// KeyPEM is the private key as a PEM PKCS #8 PRIVATE KEY block.
func (p *Pair) KeyPEM() ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(p.Key)
	if err != nil {
		return nil, fmt.Errorf("encoding the private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// Write writes the key (mode 0600) and then the certificate (mode 0644).
// Unless overwrite, it refuses to replace an existing file; with it, each
// file is replaced whole (written beside it, then renamed).
func (p *Pair) Write(certFile, keyFile string, overwrite bool) error {
	keyPEM, err := p.KeyPEM()
	if err != nil {
		return err
	}
	if err := writeFile(keyFile, keyPEM, 0o600, overwrite); err != nil {
		return err
	}
	return writeFile(certFile, p.CertPEM(), 0o644, overwrite)
}

// Load reads a certificate (the first CERTIFICATE block of certFile) and
// its private key (PKCS #8, or SEC 1 "EC PRIVATE KEY"), and checks that
// they belong together.
func Load(certFile, keyFile string) (*Pair, error) {
	cb, err := os.ReadFile(certFile)
	if err != nil {
		return nil, err
	}
	var block *pem.Block
	for rest := cb; ; {
		block, rest = pem.Decode(rest)
		if block == nil || block.Type == "CERTIFICATE" {
			break
		}
	}
	if block == nil {
		return nil, fmt.Errorf("%s: no PEM CERTIFICATE block", certFile)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: not a valid certificate: %w", certFile, err)
	}
	kb, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, err
	}
	key, err := parseKey(kb)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", keyFile, err)
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("%s is not the key of %s: give the key written with that certificate", keyFile, certFile)
	}
	return &Pair{Cert: cert, Key: key}, nil
}

func parseKey(b []byte) (crypto.Signer, error) {
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			return nil, errors.New("no PEM private key block")
		}
		var k any
		var err error
		switch block.Type {
		case "PRIVATE KEY":
			k, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			k, err = x509.ParseECPrivateKey(block.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("the %s block is not a valid key: %w", block.Type, err)
		}
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("the %s block holds a %T, which cannot sign", block.Type, k)
		}
		return s, nil
	}
}

// writeFile writes b to path with mode perm, durably: a temporary file in
// the same directory, synced, then renamed over path (overwrite) or linked
// to it, which fails if path exists.
func writeFile(path string, b []byte, perm os.FileMode, overwrite bool) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if overwrite {
		return os.Rename(tmp, path)
	}
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%s already exists: remove it, or use --force to replace every file", path)
		}
		return err
	}
	return os.Remove(tmp)
}
