package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		files []string // beside the compose file
		hint  string   // on stderr, "" for none
		out   string   // on stdout
	}{
		{"continuous", nil, []string{"agencies/agency-3.yaml", "prometheus/agencies.json", "stack.json", ".env.example"}, "", "3 agencies, continuous, load profile of 100"},
		{"one-shot without data", []string{"--mode", "oneshot", "--no-load"}, []string{"agencies/agency-3.yaml"}, "gendata --agencies 3", "3 agencies, oneshot"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "out", "docker-compose.yaml")
			var stdout, stderr bytes.Buffer
			args := append([]string{"--root", "../../..", "--agencies", "3", "--output", out, "--generated-data-dir", filepath.Join(dir, "data")}, tt.args...)
			if err := run(args, &stdout, &stderr); err != nil {
				t.Fatalf("run: %v\n%s", err, stderr.String())
			}
			for _, f := range append([]string{"docker-compose.yaml"}, tt.files...) {
				if _, err := os.Stat(filepath.Join(dir, "out", f)); err != nil {
					t.Errorf("not written: %v", err)
				}
			}
			if tt.hint == "" && stderr.Len() > 0 || !strings.Contains(stderr.String(), tt.hint) {
				t.Errorf("stderr %q, want %q", stderr.String(), tt.hint)
			}
			if !strings.Contains(stdout.String(), tt.out) {
				t.Errorf("stdout %q lacks %q", stdout.String(), tt.out)
			}
			// Generating again with other settings says what it replaced.
			stdout.Reset()
			if err := run(append(args, "--load-agencies", "7"), &stdout, &stderr); err != nil {
				t.Fatal(err)
			}
			if tt.name == "continuous" && !strings.Contains(stdout.String(), "replaced a stack generated with other settings (load agencies: 100 -> 7)") {
				t.Errorf("regenerating: %s", stdout.String())
			}
		})
	}
}

func TestRunRejects(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"--agencies", "0"},
		{"--agencies", "2", "extra"},
		{"--agencies", "x"},
		{"--agencies", "2", "--log-format", "xml"},
		{"--agencies", "2", "--data-dir", "."}, // continuous agencies read no file
		{"--agencies", "2", "--mode", "sometimes"},
	} {
		var stdout, stderr bytes.Buffer
		args = append(args, "--output", filepath.Join(t.TempDir(), "c.yaml"))
		if err := run(args, &stdout, &stderr); err == nil {
			t.Errorf("run(%q) succeeded", args)
		}
	}
}
