package certs

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/loteria/loteria/services/internal/tlsconf"
)

// The files Generate writes in its directory.
const (
	CAFile         = "ca.pem"
	CAKeyFile      = "ca-key.pem"
	CentralFile    = "central.pem"
	CentralKeyFile = "central-key.pem"
)

// AgencyFile is the name of agency i's certificate file.
func AgencyFile(i int) string { return fmt.Sprintf("agency-%d.pem", i) }

// AgencyKeyFile is the name of agency i's key file.
func AgencyKeyFile(i int) string { return fmt.Sprintf("agency-%d-key.pem", i) }

// DefaultValidity is how long Generate's certificates last unless told.
const DefaultValidity = 365 * 24 * time.Hour

// Backdate is how long before "now" Generate's certificates start, so that
// a machine whose clock is a little behind the issuer's accepts them.
const Backdate = 5 * time.Minute

// DefaultHosts are the central certificate's SANs unless told: the compose
// service names, localhost and the loopback addresses.
func DefaultHosts() []string {
	return []string{"server", "central", "localhost", "127.0.0.1", "::1"}
}

// Options tell Generate what to write.
type Options struct {
	// Agencies is N: certificates for agencies 1..N.
	Agencies int
	// Hosts are the DNS names and IP addresses of the central's
	// certificate; empty means DefaultHosts. When given and an existing
	// central certificate is kept, it must carry exactly these.
	Hosts []string
	// Validity is how long new certificates last (DefaultValidity when 0).
	// A leaf never outlives the CA that signs it: from an existing CA, it
	// ends when the CA does, if that is sooner.
	Validity time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Force replaces every file (a new CA, so every certificate issued
	// before stops being accepted). Without it, existing files are never
	// replaced; see Generate.
	Force bool
}

// Bundle is what Generate left in the directory.
type Bundle struct {
	Dir      string
	CA       *Pair // the CA that signed the certificates (made now or read)
	NewCA    bool  // whether this call made the CA
	CAFiles  Files
	Central  Files
	Agencies []Files // Agencies[i-1] are agency i's files
	// Written are the files this call wrote, in order; Kept the existing
	// ones it checked and left as they were.
	Written, Kept []string
}

// Generate writes in dir (created if missing) a CA (ca.pem, ca-key.pem),
// the central's certificate (central.pem, central-key.pem) and one
// certificate per agency (agency-<i>.pem, agency-<i>-key.pem), i in
// 1..Agencies. Keys are ECDSA P-256 in PKCS #8, mode 0600; certificates
// mode 0644.
//
// Without Force it never replaces a file:
//   - no CA in dir: it writes everything, and refuses (writing nothing) if
//     any of the other files already exists;
//   - ca.pem and ca-key.pem present: it issues, from that CA, only the
//     certificates missing (e.g. agencies added to a running system), and
//     checks the ones it keeps: issued by that CA, valid now, the agency
//     id or the hosts they should carry. Any problem is reported before
//     anything is written.
//
// With Force it writes a new CA and every certificate; agency files past
// Agencies are left alone (they no longer verify against the new CA).
func Generate(dir string, opts Options) (*Bundle, error) {
	if opts.Agencies < 0 || opts.Agencies > tlsconf.MaxAgencyID {
		return nil, fmt.Errorf("the number of agencies must be 0..%d, not %d", tlsconf.MaxAgencyID, opts.Agencies)
	}
	if opts.Validity < 0 {
		return nil, fmt.Errorf("the validity must be positive, not %s", opts.Validity)
	}
	validity := opts.Validity
	if validity == 0 {
		validity = DefaultValidity
	}
	hosts := opts.Hosts
	if len(hosts) == 0 {
		hosts = DefaultHosts()
	}
	for _, h := range hosts {
		if err := checkHost(h); err != nil {
			return nil, err
		}
	}
	now := time.Now()
	if opts.Now != nil {
		now = opts.Now()
	}

	b := &Bundle{
		Dir:     dir,
		CAFiles: Files{filepath.Join(dir, CAFile), filepath.Join(dir, CAKeyFile)},
		Central: Files{filepath.Join(dir, CentralFile), filepath.Join(dir, CentralKeyFile)},
	}
	for i := 1; i <= opts.Agencies; i++ {
		b.Agencies = append(b.Agencies, Files{filepath.Join(dir, AgencyFile(i)), filepath.Join(dir, AgencyKeyFile(i))})
	}
	central := leaf{b.Central, Spec{CommonName: "loteria central", Hosts: hosts}}
	leaves := []leaf{central}
	for i, f := range b.Agencies {
		leaves = append(leaves, leaf{f, Spec{CommonName: fmt.Sprintf("loteria agency %d", i+1), Agency: i + 1}})
	}

	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating the certificate directory: %w", err)
	}

	// Plan: decide every file before writing any.
	var todo []leaf
	caState, err := state(b.CAFiles)
	if err != nil {
		return nil, err
	}
	switch {
	case opts.Force || caState == absent:
		if !opts.Force {
			for _, l := range leaves {
				st, err := state(l.files)
				if err != nil {
					return nil, err
				}
				if st != absent {
					return nil, fmt.Errorf("%s exists but there is no CA (%s, %s) beside it: remove it, or use --force to start over with a new CA",
						existing(l.files), CAFile, CAKeyFile)
				}
			}
		}
		b.CA, err = NewCA(Spec{CommonName: "loteria CA", NotBefore: now.Add(-Backdate), NotAfter: now.Add(validity)})
		if err != nil {
			return nil, err
		}
		b.NewCA = true
		todo = leaves
	case caState == partial:
		return nil, fmt.Errorf("only %s of the CA's two files (%s, %s) exists: restore the other, or use --force to start over with a new CA",
			existing(b.CAFiles), CAFile, CAKeyFile)
	default:
		if b.CA, err = loadCA(b.CAFiles, now); err != nil {
			return nil, err
		}
		b.Kept = append(b.Kept, b.CAFiles.Cert, b.CAFiles.Key)
		for k, l := range leaves {
			st, err := state(l.files)
			if err != nil {
				return nil, err
			}
			switch st {
			case absent:
				todo = append(todo, l)
			case partial:
				return nil, fmt.Errorf("%s exists without its other file: remove it to issue the pair again from %s",
					existing(l.files), CAFile)
			default:
				if err := checkKept(b.CA, l, now, k == 0 && len(opts.Hosts) > 0); err != nil {
					return nil, err
				}
				b.Kept = append(b.Kept, l.files.Cert, l.files.Key)
			}
		}
	}

	if b.NewCA {
		if err := b.CA.Write(b.CAFiles.Cert, b.CAFiles.Key, opts.Force); err != nil {
			return nil, fmt.Errorf("writing the CA: %w", err)
		}
		b.Written = append(b.Written, b.CAFiles.Key, b.CAFiles.Cert)
	}
	for _, l := range todo {
		spec := l.spec
		spec.NotBefore = now.Add(-Backdate)
		spec.NotAfter = now.Add(validity)
		if spec.NotAfter.After(b.CA.Cert.NotAfter) {
			spec.NotAfter = b.CA.Cert.NotAfter
		}
		p, err := b.CA.Issue(spec)
		if err != nil {
			return nil, fmt.Errorf("issuing %s: %w", l.files.Cert, err)
		}
		if err := p.Write(l.files.Cert, l.files.Key, opts.Force); err != nil {
			return nil, fmt.Errorf("writing %s: %w", l.files.Cert, err)
		}
		b.Written = append(b.Written, l.files.Key, l.files.Cert)
	}
	if err := syncDir(dir); err != nil {
		return nil, err
	}
	return b, nil
}

// leaf is a certificate Generate is responsible for.
type leaf struct {
	files Files
	spec  Spec // without validity
}

type fileState int

const (
	absent  fileState = iota // neither file
	partial                  // one of the two
	present                  // both
)

// state says which of a pair's files exist.
func state(f Files) (fileState, error) {
	n := 0
	for _, p := range []string{f.Cert, f.Key} {
		_, err := os.Lstat(p)
		switch {
		case err == nil:
			n++
		case !errors.Is(err, fs.ErrNotExist):
			return 0, err
		}
	}
	return fileState(n), nil
}

// existing is one of a pair's files that exists (the certificate if both).
func existing(f Files) string {
	if _, err := os.Lstat(f.Cert); err == nil {
		return f.Cert
	}
	return f.Key
}

// loadCA reads an existing CA and checks it can still issue.
func loadCA(f Files, now time.Time) (*Pair, error) {
	ca, err := Load(f.Cert, f.Key)
	if err != nil {
		return nil, fmt.Errorf("reading the existing CA: %w; or use --force to start over with a new CA", err)
	}
	if !ca.Cert.IsCA || !ca.Cert.BasicConstraintsValid {
		return nil, fmt.Errorf("%s is not a CA certificate: use --force to start over with a new CA", f.Cert)
	}
	if now.After(ca.Cert.NotAfter) {
		return nil, fmt.Errorf("the CA %s expired on %s: use --force to start over with a new CA (and give every agency its new certificate)",
			f.Cert, ca.Cert.NotAfter.UTC().Format(time.RFC3339))
	}
	return ca, nil
}

// checkKept checks an existing certificate Generate would otherwise have
// issued: its key, its chain to ca at now, and what it names.
func checkKept(ca *Pair, l leaf, now time.Time, checkHosts bool) error {
	again := fmt.Sprintf("remove %s and %s to issue them again from %s, or use --force to start over with a new CA",
		filepath.Base(l.files.Cert), filepath.Base(l.files.Key), CAFile)
	p, err := Load(l.files.Cert, l.files.Key)
	if err != nil {
		return fmt.Errorf("%w: %s", err, again)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	usage := x509.ExtKeyUsageClientAuth
	if l.spec.Agency == 0 {
		usage = x509.ExtKeyUsageServerAuth
	}
	if _, err := p.Cert.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
		return fmt.Errorf("%s does not verify against %s (%w): %s", l.files.Cert, CAFile, err, again)
	}
	if l.spec.Agency != 0 {
		id, err := tlsconf.AgencyID(p.Cert)
		if err != nil {
			return fmt.Errorf("%s: %w: %s", l.files.Cert, err, again)
		}
		if id != l.spec.Agency {
			return fmt.Errorf("%s names agency %d, not %d: %s", l.files.Cert, id, l.spec.Agency, again)
		}
	}
	if checkHosts {
		if got := certHosts(p.Cert); !sameHosts(got, l.spec.Hosts) {
			return fmt.Errorf("%s is for hosts %s, not the requested %s: %s",
				l.files.Cert, strings.Join(got, ","), strings.Join(l.spec.Hosts, ","), again)
		}
	}
	return nil
}

// certHosts are a certificate's DNS and IP SANs as strings.
func certHosts(c *x509.Certificate) []string {
	h := slices.Clone(c.DNSNames)
	for _, ip := range c.IPAddresses {
		h = append(h, ip.String())
	}
	return h
}

// sameHosts compares two host lists as sets: DNS names without regard to
// case, IP addresses by value.
func sameHosts(a, b []string) bool {
	norm := func(hs []string) []string {
		out := make([]string, 0, len(hs))
		for _, h := range hs {
			if ip := net.ParseIP(h); ip != nil {
				out = append(out, ip.String())
			} else {
				out = append(out, strings.ToLower(h))
			}
		}
		slices.Sort(out)
		return slices.Compact(out)
	}
	return slices.Equal(norm(a), norm(b))
}

// syncDir makes the directory entries of the files just written durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	return nil
}
