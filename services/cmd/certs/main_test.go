package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/loteria/loteria/internal/testenv"
	"github.com/loteria/loteria/services/internal/tlsconf"
)

const helpLine = "certs: writes a CA, the central's certificate and one certificate per agency for mutual TLS"

func TestRunUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		want string // in stderr
	}{
		{"help", []string{"-h"}, 0, helpLine},
		{"long help", []string{"--help"}, 0, helpLine},
		{"no agencies", []string{"--out", "x"}, 2, "--agencies is required"},
		{"zero agencies", []string{"--agencies", "0", "--out", "x"}, 2, "--agencies is required"},
		{"no out", []string{"--agencies", "2"}, 2, "--out is required"},
		{"days zero", []string{"--agencies", "2", "--out", "x", "--days", "0"}, 2, "--days must be 1..36500"},
		{"empty host", []string{"--agencies", "2", "--out", "x", "--hosts", "a,,b"}, 2, "--hosts has an empty entry"},
		{"stray argument", []string{"--agencies", "2", "--out", "x", "5"}, 2, "unexpected arguments"},
		{"unknown flag", []string{"--agency", "2"}, 2, "flag provided but not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(tt.args, &stdout, &stderr); code != tt.code {
				t.Errorf("exit %d, want %d", code, tt.code)
			}
			if !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("stderr %q does not say %q", stderr.String(), tt.want)
			}
			if tt.code == 0 && !strings.HasPrefix(stderr.String(), helpLine+"\n") {
				t.Errorf("help does not start with its one-line summary: %q", stderr.String())
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout: %q", stdout.String())
			}
		})
	}
}

// TestRunWritesAWorkingBundle runs certs, then a real mutual-TLS
// handshake with what it wrote; then adds an agency and shows the central,
// its configuration unchanged, accepts the new one too.
func TestRunWritesAWorkingBundle(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	before := time.Now()
	stdout := mustRun(t, "--agencies", "2", "--out", dir, "--hosts", "localhost,127.0.0.1", "--days", "30")
	after := time.Now()
	wantWrote := func(names ...string) string {
		var b strings.Builder
		for _, n := range names {
			fmt.Fprintf(&b, "wrote %s\n", filepath.Join(dir, n))
		}
		return b.String()
	}
	if want := wantWrote("ca-key.pem", "ca.pem", "central-key.pem", "central.pem",
		"agency-1-key.pem", "agency-1.pem", "agency-2-key.pem", "agency-2.pem"); !strings.HasPrefix(stdout, want) {
		t.Errorf("stdout:\n%s\nwant it to start with:\n%s", stdout, want)
	}
	until := func(t time.Time) string {
		return "CA valid until " + t.Add(30*24*time.Hour).UTC().Format(time.DateOnly)
	}
	if !strings.Contains(stdout, until(before)) && !strings.Contains(stdout, until(after)) {
		t.Errorf("stdout %q does not say %q", stdout, until(after))
	}

	srv, err := tlsconf.ServerConfig(filepath.Join(dir, "central.pem"), filepath.Join(dir, "central-key.pem"), filepath.Join(dir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if got := handshake(t, srv, dir, 2); got != 2 {
		t.Errorf("the central saw agency %d, want 2", got)
	}

	stdout = mustRun(t, "--agencies", "3", "--out", dir)
	if want := wantWrote("agency-3-key.pem", "agency-3.pem"); !strings.HasPrefix(stdout, want) || strings.Count(stdout, "wrote ") != 2 {
		t.Errorf("second run's stdout:\n%s\nwant only:\n%s", stdout, want)
	}
	if got := handshake(t, srv, dir, 3); got != 3 {
		t.Errorf("the central saw agency %d, want 3", got)
	}

	stdout = mustRun(t, "--agencies", "3", "--out", dir)
	if !strings.HasPrefix(stdout, "nothing to write") {
		t.Errorf("third run's stdout: %q", stdout)
	}
}

func TestRunRefuses(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "central.pem"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"--agencies", "1", "--out", dir}, &stdout, &stderr); code != 1 {
		t.Fatalf("exit %d, want 1; stderr %s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "central.pem exists but there is no CA") || !strings.Contains(stderr.String(), "--force") {
		t.Errorf("stderr %q does not say what to do", stderr.String())
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "central.pem")); string(b) != "mine" {
		t.Error("central.pem was replaced")
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("%d files in the directory, want only central.pem", len(ents))
	}
	// --force replaces it.
	if code := run([]string{"--agencies", "1", "--out", dir, "--force"}, &stdout, &stderr); code != 0 {
		t.Fatalf("--force: exit %d; stderr %s", code, stderr.String())
	}
	ents, _ = os.ReadDir(dir)
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if want := []string{"agency-1-key.pem", "agency-1.pem", "ca-key.pem", "ca.pem", "central-key.pem", "central.pem"}; !slices.Equal(got, want) {
		t.Errorf("files %q, want %q", got, want)
	}
}

// TestProcessHelp runs the built binary: -h is what an operator types first.
func TestProcessHelp(t *testing.T) {
	bin := testenv.BuildPrograms(t, t.TempDir(), "certs")["certs"]
	var stderr bytes.Buffer
	cmd := exec.Command(bin, "-h")
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("certs -h: %v", err)
	}
	if first, _, _ := strings.Cut(stderr.String(), "\n"); first != helpLine {
		t.Errorf("first line %q, want %q", first, helpLine)
	}
}

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if code := run(args, &stdout, &stderr); code != 0 {
		t.Fatalf("certs %s: exit %d, stderr: %s", strings.Join(args, " "), code, stderr.String())
	}
	if stderr.Len() != 0 {
		t.Errorf("stderr: %s", stderr.String())
	}
	return stdout.String()
}

// handshake serves one TLS connection with srv and connects to it as
// agency id with the files in dir, through "localhost"; it returns the
// agency the central saw.
func handshake(t *testing.T, srv *tls.Config, dir string, id int) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type seen struct {
		agency int
		err    error
	}
	out := make(chan seen, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			out <- seen{err: err}
			return
		}
		defer c.Close()
		tc := tls.Server(c, srv)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := tc.HandshakeContext(ctx); err != nil {
			out <- seen{err: err}
			return
		}
		a, err := tlsconf.PeerAgency(tc.ConnectionState())
		tc.Write([]byte("ok"))
		out <- seen{a, err}
	}()
	cli, err := tlsconf.ClientConfig(filepath.Join(dir, fmt.Sprintf("agency-%d.pem", id)), filepath.Join(dir, fmt.Sprintf("agency-%d-key.pem", id)),
		filepath.Join(dir, "ca.pem"), "localhost")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d := tls.Dialer{Config: cli}
	c, err := d.DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("agency %d: %v", id, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, make([]byte, 2)); err != nil {
		t.Fatalf("agency %d, reading: %v", id, err)
	}
	s := <-out
	if s.err != nil {
		t.Fatalf("central: %v", s.err)
	}
	return s.agency
}
