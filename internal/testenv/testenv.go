// Package testenv helps tests find the official data, compute what it
// implies independently of the code under test, read the store back, and
// build the programs.
package testenv

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// RepoRoot is the directory holding go.mod.
func RepoRoot(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatal("go.mod not found above the test's directory")
		}
		dir = parent
	}
}

// Unavailable skips the test because something it needs is missing, or
// fails it under CI (CI set), where everything must be there.
func Unavailable(tb testing.TB, format string, args ...any) {
	tb.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") != "" {
		tb.Fatalf("%s (CI is set: the test must run)", msg)
	}
	tb.Skip(msg)
}

// OfficialDataDir is ../shared/datasets/tp0 beside the repository; see
// Unavailable for when it is missing.
func OfficialDataDir(tb testing.TB) string {
	tb.Helper()
	dir := filepath.Join(RepoRoot(tb), "..", "shared", "datasets", "tp0")
	if _, err := os.Stat(AgencyFile(dir, 1)); err != nil {
		Unavailable(tb, "official data not found at %s", dir)
	}
	return dir
}

// CountBets counts the non-empty lines of agencies 1..n's files in dir.
func CountBets(tb testing.TB, dir string, n int) int {
	tb.Helper()
	total := 0
	for i := 1; i <= n; i++ {
		total += len(ReadAgencyFile(tb, AgencyFile(dir, i), i))
	}
	return total
}

// AgencyFile is the path of agency i's file in dir.
func AgencyFile(dir string, i int) string {
	return filepath.Join(dir, fmt.Sprintf("agency-%d.csv", i))
}

// Bet is a bet as the test reads it, with plain string fields.
type Bet struct {
	Agency                                   int
	First, Last, Document, Birthdate, Number string
}

// Key is a bet's identity for exactly-once checks.
func (b Bet) Key() string {
	return strings.Join([]string{strconv.Itoa(b.Agency), b.First, b.Last, b.Document, b.Birthdate, b.Number}, "\x00")
}

// ReadAgencyFile reads a dataset file with encoding/csv.
func ReadAgencyFile(tb testing.TB, path string, agency int) []Bet {
	tb.Helper()
	var bets []Bet
	readCSV(tb, path, 5, func(rec []string) {
		bets = append(bets, Bet{agency, rec[0], rec[1], rec[2], rec[3], rec[4]})
	})
	return bets
}

// Winners is the DNIs of the bets playing 7574, in file order, computed
// here rather than by the lottery package.
func Winners(bets []Bet) []string {
	w := []string{}
	for _, b := range bets {
		if n, err := strconv.Atoi(b.Number); err == nil && n == 7574 {
			w = append(w, b.Document)
		}
	}
	return w
}

// ReadStore reads the central's bets file (agency,first,last,document,
// birthdate,number) with encoding/csv. A running central's file ends in
// the zeros its store keeps ahead (docs/STORE.md): it is read up to its
// last newline, as docs/STORE.md tells a reader of a live store to, and
// anything but zeros after that line fails the test.
func ReadStore(tb testing.TB, path string) []Bet {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	rows := b[:bytes.LastIndexByte(b, '\n')+1]
	if rest := b[len(rows):]; len(bytes.Trim(rest, "\x00")) != 0 {
		tb.Fatalf("%s: %d bytes after its last row are not the zeros a store keeps ahead", path, len(rest))
	}
	var bets []Bet
	readCSVFrom(tb, path, bytes.NewReader(rows), 6, func(rec []string) {
		a, err := strconv.Atoi(rec[0])
		if err != nil {
			tb.Fatalf("%s: agency %q", path, rec[0])
		}
		bets = append(bets, Bet{a, rec[1], rec[2], rec[3], rec[4], rec[5]})
	})
	return bets
}

// readCSV calls fn with every record of the CSV file at path, each of
// exactly fields fields.
func readCSV(tb testing.TB, path string, fields int, fn func(rec []string)) {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	readCSVFrom(tb, path, f, fields, fn)
}

func readCSVFrom(tb testing.TB, path string, in io.Reader, fields int, fn func(rec []string)) {
	tb.Helper()
	r := csv.NewReader(in)
	r.FieldsPerRecord = fields
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			tb.Fatalf("%s: %v", path, err)
		}
		fn(rec)
	}
}

// ByAgency groups bets by agency, keeping order.
func ByAgency(bets []Bet) map[int][]Bet {
	m := map[int][]Bet{}
	for _, b := range bets {
		m[b.Agency] = append(m[b.Agency], b)
	}
	return m
}

// BuildPrograms builds the named commands under services/cmd into dir and
// returns their paths by name.
func BuildPrograms(tb testing.TB, dir string, names ...string) map[string]string {
	tb.Helper()
	root := RepoRoot(tb)
	out := map[string]string{}
	args := []string{"build", "-o", dir + string(os.PathSeparator)}
	for _, n := range names {
		args = append(args, "./services/cmd/"+n)
		out[n] = filepath.Join(dir, n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("go build: %v\n%s", err, b)
	}
	return out
}

// FreeAddr returns a loopback address with a port free right now; see
// FreeAddrs.
func FreeAddr(tb testing.TB) string {
	tb.Helper()
	return FreeAddrs(tb, 1)[0]
}

// FreeAddrs returns n distinct loopback addresses whose ports are free right
// now, for programs a test starts next. The ports come from below the
// kernel's ephemeral range, so that no outgoing connection of this or any
// other test (the kernel takes their local ports from that range) can take
// one before the program binds it, and they are held open together while
// drawn, so that no two are the same port. A CI run once failed on two
// agencies given the same port by consecutive binds of port 0.
//
// No port is handed out twice by one test binary: a port drawn earlier may
// not be bound yet (PlanSystem draws the agencies' metrics ports, then
// Prometheus's, long before the agencies start), and a later draw must not
// take it because it still looks free.
func FreeAddrs(tb testing.TB, n int) []string {
	tb.Helper()
	lo, hi := portsBelowEphemeral()
	held := make([]net.Listener, 0, n)
	defer func() {
		for _, ln := range held {
			ln.Close()
		}
	}()
	handedOut.Lock()
	defer handedOut.Unlock()
	for tries := 0; len(held) < n; tries++ {
		addr := "127.0.0.1:0"
		if hi > lo && tries < 1000 {
			addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(lo+rand.IntN(hi-lo)))
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			if addr == "127.0.0.1:0" {
				tb.Fatal(err)
			}
			continue // taken: draw another
		}
		if port := ln.Addr().(*net.TCPAddr).Port; handedOut.ports[port] {
			ln.Close() // free now, but handed out before: its program may not have bound it yet
			continue
		}
		held = append(held, ln)
	}
	addrs := make([]string, n)
	for i, ln := range held {
		addrs[i] = ln.Addr().String()
		handedOut.ports[ln.Addr().(*net.TCPAddr).Port] = true
	}
	return addrs
}

// handedOut is every port FreeAddrs has returned in this process.
var handedOut = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// portsBelowEphemeral is the range [lo, hi) of ports FreeAddrs draws from:
// from 20000 up to the first port of the kernel's ephemeral range; empty
// when that range starts too low to leave a thousand ports.
func portsBelowEphemeral() (lo, hi int) {
	lo, hi = 20000, 32768 // Linux's default ephemeral range starts at 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if first, err := strconv.Atoi(f[0]); err == nil {
				hi = first
			}
		}
	}
	if hi-lo < 1000 {
		return 0, 0
	}
	return lo, hi
}

// Eventually polls cond every few milliseconds until it holds or the
// timeout passes.
func Eventually(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			tb.Fatalf("timed out after %s waiting for %s", timeout, what)
		case <-tick.C:
		}
	}
}

// Tool finds a program a test runs: $envVar when set, else bin/<name> in
// the repository (make tools builds the test backends there, of the lines
// the stack deploys), else <name> on PATH; "" when none. The repository's
// own build comes before PATH so that a distribution's older package (a
// Debian prometheus 2.x, say) never stands in for it unnoticed.
func Tool(tb testing.TB, envVar, name string) string {
	tb.Helper()
	if p := os.Getenv(envVar); p != "" {
		if _, err := os.Stat(p); err != nil {
			tb.Fatalf("%s=%s: %v", envVar, p, err)
		}
		return p
	}
	if p := filepath.Join(RepoRoot(tb), "bin", name); fileExists(p) {
		return p
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	return ""
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}
