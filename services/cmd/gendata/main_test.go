package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loteria/loteria/services/internal/datagen"
)

func TestRun(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		counts []int // bets per file, agency 1..len
		seed   uint64
		ratio  float64
	}{
		{"one count for all", []string{"--agencies", "3", "--bets", "500", "--seed", "9"}, []int{500, 500, 500}, 9, 0.002},
		{"list sets agencies", []string{"--bets", "300,20,0", "--winner-ratio", "0.1"}, []int{300, 20, 0}, 1, 0.1},
		{"list matches agencies", []string{"--agencies=2", "--bets=7,8", "--winner-ratio=0"}, []int{7, 8}, 1, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "nested", "out")
			var stdout, stderr bytes.Buffer
			if code := run(append(tt.args, "--out", dir), &stdout, &stderr); code != 0 {
				t.Fatalf("exit %d, stderr: %s", code, stderr.String())
			}
			if stderr.Len() != 0 {
				t.Errorf("stderr: %s", stderr.String())
			}
			var wantOut strings.Builder
			for i, n := range tt.counts {
				path := filepath.Join(dir, fmt.Sprintf("agency-%d.csv", i+1))
				got, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				var want bytes.Buffer
				winners, err := datagen.Write(&want, datagen.Options{Seed: tt.seed, Agency: i + 1, WinnerRatio: tt.ratio}, n)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want.Bytes()) {
					t.Errorf("%s differs from datagen.Write", path)
				}
				if lines := bytes.Count(got, []byte("\r\n")); lines != n {
					t.Errorf("%s has %d lines, want %d", path, lines, n)
				}
				fmt.Fprintf(&wantOut, "%s bets=%d winners=%d\n", path, n, winners)
			}
			if stdout.String() != wantOut.String() {
				t.Errorf("stdout:\n%s\nwant:\n%s", stdout.String(), wantOut.String())
			}
			ents, _ := os.ReadDir(dir)
			if len(ents) != len(tt.counts) {
				t.Errorf("%d entries in %s, want %d", len(ents), dir, len(tt.counts))
			}
		})
	}
}

func TestRunDeterministic(t *testing.T) {
	var files [2][]byte
	for k := range files {
		dir := t.TempDir()
		if code := run([]string{"--agencies", "1", "--bets", "1000", "--seed", "4", "--out", dir}, new(bytes.Buffer), new(bytes.Buffer)); code != 0 {
			t.Fatalf("exit %d", code)
		}
		var err error
		if files[k], err = os.ReadFile(filepath.Join(dir, "agency-1.csv")); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(files[0], files[1]) || len(files[0]) == 0 {
		t.Fatal("two runs with the same flags wrote different files")
	}
}

func TestRunErrors(t *testing.T) {
	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		code int
	}{
		{"unknown flag", []string{"--nope"}, 2},
		{"bad count", []string{"--bets", "ten"}, 2},
		{"negative count", []string{"--bets", "-1"}, 2},
		{"empty list entry", []string{"--bets", "5,,6"}, 2},
		{"list length mismatch", []string{"--agencies", "3", "--bets", "1,2"}, 2},
		{"zero agencies", []string{"--agencies", "0"}, 2},
		{"ratio above 1", []string{"--winner-ratio", "1.5"}, 2},
		{"negative ratio", []string{"--winner-ratio", "-0.1"}, 2},
		{"NaN ratio", []string{"--winner-ratio", "NaN"}, 2},
		{"bad seed", []string{"--seed", "-3"}, 2},
		{"positional argument", []string{"extra"}, 2},
		{"empty out", []string{"--out", ""}, 2},
		{"out is a file", []string{"--bets", "1", "--out", notDir}, 1},
		{"out under a file", []string{"--bets", "1", "--out", filepath.Join(notDir, "sub")}, 1},
		{"help", []string{"-h"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(tt.args, &stdout, &stderr)
			if code != tt.code {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tt.code, stderr.String())
			}
			if stderr.Len() == 0 {
				t.Error("nothing on stderr")
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout: %s", stdout.String())
			}
			lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
			switch tt.code {
			case 0: // -h: first what the program is, then how to call it
				if !strings.HasPrefix(lines[0], "gendata: writes ") || !strings.Contains(stderr.String(), "\n  --bets N|N1,N2,...\n") {
					t.Errorf("-h does not introduce the program and its flags:\n%s", stderr.String())
				}
			case 2: // a bad flag: one line saying what is wrong and where the help is
				if len(lines) != 1 || !strings.HasPrefix(lines[0], "gendata: ") || !strings.Contains(lines[0], "gendata -h") {
					t.Errorf("want one line naming the problem and gendata -h, got:\n%s", stderr.String())
				}
			}
		})
	}
}
