package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWriteThenCheck(t *testing.T) {
	dir := t.TempDir()
	if err := run([]string{"-check", "-out", dir}); err == nil {
		t.Fatal("-check passed on an empty directory")
	}
	if err := run([]string{"-out", dir}); err != nil {
		t.Fatal(err)
	}
	if err := run([]string{"-check", "-out", dir}); err != nil {
		t.Fatalf("-check after writing: %v", err)
	}
	f := filepath.Join(dir, "loteria-central.json")
	if err := os.WriteFile(f, []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := run([]string{"-check", "-out", dir}); err == nil {
		t.Error("-check passed on an edited dashboard")
	}
}
