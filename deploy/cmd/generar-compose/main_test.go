package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out", "docker-compose.yaml")
	var stdout, stderr bytes.Buffer
	args := []string{"--root", "../../..", "--agencies", "3", "--output", out, "--generated-data-dir", filepath.Join(dir, "data")}
	if err := run(args, &stdout, &stderr); err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	for _, f := range []string{out, filepath.Join(dir, "out", "agencies", "agency-3.yaml"), filepath.Join(dir, "out", "prometheus", "agencies.json")} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("not written: %v", err)
		}
	}
	if !strings.Contains(stderr.String(), "gendata --agencies 3") {
		t.Errorf("no hint to generate the missing data files:\n%s", stderr.String())
	}
}

func TestRunRejects(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"--agencies", "0"},
		{"--agencies", "2", "extra"},
		{"--agencies", "x"},
		{"--agencies", "2", "--log-format", "xml"},
	} {
		var stdout, stderr bytes.Buffer
		args = append(args, "--output", filepath.Join(t.TempDir(), "c.yaml"))
		if err := run(args, &stdout, &stderr); err == nil {
			t.Errorf("run(%q) succeeded", args)
		}
	}
}
