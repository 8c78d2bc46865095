package scripts

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/loteria/loteria/internal/testenv"
)

func TestBenchOfficial(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the benchmark script as processes")
	}
	binDir := t.TempDir()
	bins := testenv.BuildPrograms(t, binDir, "central", "agency", "gendata")
	data := t.TempDir()
	gendata(t, bins["gendata"], data, "--agencies", "5", "--bets", "400")
	row := func(label string) *regexp.Regexp {
		return regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(label) + ` +min [0-9.]+ s  median [0-9.]+ s  max [0-9.]+ s  \(2 runs\)$`)
	}

	tests := []struct {
		name    string
		env     []string
		rows    []string
		nofsync bool
	}{
		{
			name: "durable",
			env:  []string{"CONFIGS=10 4 loteria,10000 1 seed"},
			rows: []string{"batch.maxAmount=10 in-flight=4 protocol=loteria", "full 8 KiB frames in-flight=1 protocol=seed"},
		},
		{
			name:    "NOFSYNC=1 builds its own central, never into bin/",
			env:     []string{"CONFIGS=10000 4 loteria", "NOFSYNC=1"},
			rows:    []string{"full 8 KiB frames in-flight=4 protocol=loteria (no fsync)"},
			nofsync: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			binsBefore := stats(t, binDir, filepath.Join(testenv.RepoRoot(t), "bin"))
			tmp := t.TempDir()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			s := start(t, ctx, "bench-official.sh", env(tmp, append(tt.env, "BIN="+binDir, "DATA_DIR="+data)...), "2")
			if code := s.wait(t); code != 0 {
				t.Fatalf("bench exited %d\n%s", code, s.output())
			}
			for _, r := range tt.rows {
				if !row(r).MatchString(s.Stdout()) {
					t.Errorf("no row %q with min/median/max over 2 runs\n%s", r, s.output())
				}
			}
			if tt.nofsync != regexp.MustCompile(`NOFSYNC=1: building a central whose store never fsyncs`).MatchString(s.Stdout()) {
				t.Errorf("NOFSYNC=%v but the script says otherwise\n%s", tt.nofsync, s.output())
			}
			if after := stats(t, binDir, filepath.Join(testenv.RepoRoot(t), "bin")); !equalStats(binsBefore, after) {
				t.Errorf("the script changed programs in bin/ or BIN: before %v, after %v", binsBefore, after)
			}
			emptyDir(t, tmp)
		})
	}

	t.Run("interrupted, it stops its central and agencies", func(t *testing.T) {
		tmp := t.TempDir()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// A barrier of 6: the 5 agencies wait for a sixth that never comes.
		s := start(t, ctx, "bench-official.sh", env(tmp, "BIN="+binDir, "DATA_DIR="+data, "CONFIGS=10 4 loteria", "CENTRAL_ENV=CLIENT_COUNT=6"), "1")
		agencyBin, centralBin := filepath.Join(binDir, "agency"), filepath.Join(binDir, "central")
		testenv.Eventually(t, 30*time.Second, "5 agencies waiting", func() bool { return len(processesOf(t, agencyBin)) == 5 })
		pids := append(processesOf(t, agencyBin), processesOf(t, centralBin)...)
		if len(pids) != 6 {
			t.Fatalf("want 5 agencies and 1 central running, found pids %v", pids)
		}
		if err := s.cmd.Process.Signal(syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
		if code := s.wait(t); code != 130 {
			t.Errorf("exit %d after SIGINT, want 130\n%s", code, s.output())
		}
		for _, pid := range pids {
			if alive(pid) {
				t.Errorf("pid %d still running after the script exited", pid)
			}
		}
		emptyDir(t, tmp)
	})
}

// stats records the size and modification time of every file in dirs.
func stats(t *testing.T, dirs ...string) map[string][2]int64 {
	t.Helper()
	m := map[string][2]int64{}
	for _, d := range dirs {
		ents, err := os.ReadDir(d)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			fi, err := e.Info()
			if err != nil {
				t.Fatal(err)
			}
			m[filepath.Join(d, e.Name())] = [2]int64{fi.Size(), fi.ModTime().UnixNano()}
		}
	}
	return m
}

func equalStats(a, b map[string][2]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
