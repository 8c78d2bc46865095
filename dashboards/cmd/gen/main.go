// Command gen writes the loteria Grafana dashboards as JSON files.
//
//	go run ./dashboards/cmd/gen [-out dashboards]
//
// With -check it writes nothing and exits 1 if a file on disk differs from what the code generates.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/loteria/loteria/dashboards"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fset := flag.NewFlagSet("gen", flag.ContinueOnError)
	out := fset.String("out", "dashboards", "directory to write the dashboard JSON files to")
	check := fset.Bool("check", false, "compare with the files on disk instead of writing them")
	if err := fset.Parse(args); err != nil {
		return err
	}
	files, err := dashboards.Files()
	if err != nil {
		return err
	}
	var stale []string
	for _, f := range files {
		path := filepath.Join(*out, f.Name)
		if *check {
			old, err := os.ReadFile(path)
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("read %s: %w", path, err)
			}
			if !bytes.Equal(old, f.JSON) {
				stale = append(stale, path)
			}
			continue
		}
		if err := writeFile(path, f.JSON); err != nil {
			return err
		}
		fmt.Println("wrote", path)
	}
	if len(stale) > 0 {
		return fmt.Errorf("out of date (run go run ./dashboards/cmd/gen): %v", stale)
	}
	return nil
}

// writeFile replaces path atomically, so Grafana's file provider never reads half a dashboard.
func writeFile(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
