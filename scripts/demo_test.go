package scripts

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/loteria/loteria/internal/testenv"
)

// The demo's lines this test reads (the format a user sees).
var (
	headRE    = regexp.MustCompile(`^  agency (\d+)(?:, round (\d+))?: (?:(\d+) winners?|none)$`)
	summaryRE = regexp.MustCompile(`^demo: (\d+) agencies, (\d+) bets stored, (\d+) winners, ([0-9.]+) s `)
	centralRE = regexp.MustCompile(`^demo: central: pid (\d+) on 127\.0\.0\.1:(\d+), metrics on http://127\.0\.0\.1:(\d+)/metrics$`)
	storeRE   = regexp.MustCompile(`^demo: store: (\S+) `)
	startedRE = regexp.MustCompile(`^demo: agencies: (\d+) started`)
	// A raw log line (tint, json or logfmt) has no place in what the demo prints.
	logLineRE = regexp.MustCompile(`\b(INF|WRN|ERR|DBG)\b|level=|"msg":`)
)

const columns = 60

// fixture is a data directory for the demo and what it implies, computed
// from the files with encoding/csv rather than by the programs.
type fixture struct {
	dir     string
	bets    int
	winners map[int][]string // agency → DNIs playing 7574, in file order
}

// newFixture writes three agencies' files: 1 and 3 with many winners (so
// their lists wrap), 2 with none.
func newFixture(t *testing.T, gendataBin string) fixture {
	t.Helper()
	dir, none := t.TempDir(), t.TempDir()
	gendata(t, gendataBin, dir, "--agencies", "3", "--bets", "3000", "--winner-ratio", "0.02", "--seed", "7")
	gendata(t, gendataBin, none, "--agencies", "3", "--bets", "300", "--winner-ratio", "0", "--seed", "7")
	b, err := os.ReadFile(testenv.AgencyFile(none, 2))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(testenv.AgencyFile(dir, 2), b, 0o644); err != nil {
		t.Fatal(err)
	}
	f := fixture{dir: dir, winners: map[int][]string{}}
	for i := 1; i <= 3; i++ {
		bets := testenv.ReadAgencyFile(t, testenv.AgencyFile(dir, i), i)
		f.bets += len(bets)
		f.winners[i] = testenv.Winners(bets)
	}
	if len(f.winners[2]) != 0 || len(f.winners[1]) < 20 {
		t.Fatalf("fixture: agency 2 should have no winners and agency 1 many (got %d and %d): change the seed",
			len(f.winners[2]), len(f.winners[1]))
	}
	return f
}

func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the demo as processes")
	}
	binDir := t.TempDir()
	bins := testenv.BuildPrograms(t, binDir, "central", "agency", "gendata")
	fx := newFixture(t, bins["gendata"])

	t.Run("every winner in full", func(t *testing.T) {
		for _, tt := range []struct {
			name, bin string
			round     bool
		}{
			{"agency's line per round", binDir, true},
		} {
			t.Run(tt.name, func(t *testing.T) {
				tmp := t.TempDir()
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
				defer cancel()
				s := start(t, ctx, "demo.sh", env(tmp, "BIN="+tt.bin, "DATA_DIR="+fx.dir, "AGENCIES=3", fmt.Sprintf("COLUMNS=%d", columns)))
				if code := s.wait(t); code != 0 {
					t.Fatalf("demo exited %d\n%s", code, s.output())
				}
				checkDemoOutput(t, s.Stdout(), fx, tt.round)
				emptyDir(t, tmp)
			})
		}
	})

	t.Run("an explicit port that is taken fails at once, naming it and its holder", func(t *testing.T) {
		for _, name := range []string{"PORT", "METRICS_PORT"} {
			t.Run(name, func(t *testing.T) {
				ln, err := listen(t, "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
				tmp := t.TempDir()
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				s := start(t, ctx, "demo.sh", env(tmp, "BIN="+binDir, "DATA_DIR="+fx.dir, "AGENCIES=3", name+"="+port))
				if code := s.wait(t); code == 0 {
					t.Fatalf("demo succeeded on a taken %s\n%s", name, s.output())
				}
				want := fmt.Sprintf("port %s (%s) is taken by ", port, name)
				if !strings.Contains(s.Stderr(), want) {
					t.Errorf("stderr does not say %q\n%s", want, s.output())
				}
				if _, err := exec.LookPath("ss"); err == nil {
					if w := fmt.Sprintf("(pid %d)", os.Getpid()); !strings.Contains(s.Stderr(), w) {
						t.Errorf("ss is installed but stderr does not name the holder %s\n%s", w, s.output())
					}
				}
				if strings.Contains(s.Stdout(), "central: pid") {
					t.Errorf("the demo started a central before checking its ports\n%s", s.output())
				}
				emptyDir(t, tmp)
			})
		}
	})

	t.Run("the default port taken: another free port", func(t *testing.T) {
		// Held here, or already held by someone else: taken either way.
		_, _ = listen(t, "127.0.0.1:12345")
		tmp := t.TempDir()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		s := start(t, ctx, "demo.sh", env(tmp, "BIN="+binDir, "DATA_DIR="+fx.dir, "AGENCIES=3", fmt.Sprintf("COLUMNS=%d", columns)))
		if code := s.wait(t); code != 0 {
			t.Fatalf("demo exited %d\n%s", code, s.output())
		}
		if !strings.Contains(s.Stdout(), "demo: port 12345 is taken by ") {
			t.Errorf("the demo does not say 12345 is taken\n%s", s.output())
		}
		m := centralRE.FindStringSubmatch(findLine(s.Stdout(), centralRE))
		if m == nil || m[2] == "12345" {
			t.Errorf("central line %q: want a port other than 12345", m)
		}
		checkDemoOutput(t, s.Stdout(), fx, true)
		emptyDir(t, tmp)
	})

	t.Run("a central that dies shows its own error", func(t *testing.T) {
		tmp := t.TempDir()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// A setting the central refuses at start.
		s := start(t, ctx, "demo.sh", env(tmp, "BIN="+binDir, "DATA_DIR="+fx.dir, "AGENCIES=3", "CENTRAL_ENV=MAX_FRAME_BYTES=1"))
		if code := s.wait(t); code == 0 {
			t.Fatalf("demo succeeded with a central that cannot start\n%s", s.output())
		}
		for _, w := range []string{"demo: the central exited (status 2) before it was ready", "  | central: MAX_FRAME_BYTES 1: want 64.."} {
			if !strings.Contains(s.Stderr(), w) {
				t.Errorf("stderr lacks %q\n%s", w, s.output())
			}
		}
	})

	t.Run("a central that is not the one it started is refused", func(t *testing.T) {
		_, errSS := exec.LookPath("ss")
		if errSS != nil {
			testenv.Unavailable(t, "needs ss (iproute2) to see who holds a port")
		}
		// The pid the demo starts is a wrapper; the central listening is
		// its child, as a stray central would be another process.
		wrapped := t.TempDir()
		childPid := filepath.Join(t.TempDir(), "child.pid")
		for _, p := range []string{"agency", "gendata"} {
			if err := os.Symlink(bins[p], filepath.Join(wrapped, p)); err != nil {
				t.Fatal(err)
			}
		}
		writeScript(t, filepath.Join(wrapped, "central"), `[ "$1" = healthcheck ] && exec "`+bins["central"]+`" "$@"
"`+bins["central"]+`" "$@" &
child=$!
echo "$child" > "`+childPid+`"
trap 'kill -TERM "$child"; wait "$child"; exit 143' TERM INT
wait "$child"
`)
		tmp := t.TempDir()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		s := start(t, ctx, "demo.sh", env(tmp, "BIN="+wrapped, "DATA_DIR="+fx.dir, "AGENCIES=3"))
		code := s.wait(t)
		b, err := os.ReadFile(childPid)
		if err != nil {
			t.Fatalf("the wrapper never started the central: %v\n%s", err, s.output())
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		if pid > 0 && alive(pid) {
			t.Errorf("the central (pid %d) outlived the demo", pid)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		if code == 0 {
			t.Fatalf("demo accepted a central it did not start\n%s", s.output())
		}
		if !strings.Contains(s.Stderr(), "not by the central started here") && !strings.Contains(s.Stderr(), "not for the central started here") {
			t.Errorf("stderr does not say the port is held by another process\n%s", s.output())
		}
	})

	t.Run("interrupted, it stops what it started", func(t *testing.T) {
		for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
			t.Run(sig.String(), func(t *testing.T) {
				tmp := t.TempDir()
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				// The central waits for a third agency that never comes, so
				// the agencies wait at the barrier until interrupted.
				s := start(t, ctx, "demo.sh", env(tmp, "BIN="+binDir, "DATA_DIR="+fx.dir, "AGENCIES=2", "CENTRAL_ENV=CLIENT_COUNT=3"))
				m := s.await(t, centralRE, 30*time.Second)
				central, _ := strconv.Atoi(m[1])
				s.await(t, startedRE, 10*time.Second)
				agencyBin := filepath.Join(binDir, "agency")
				testenv.Eventually(t, 10*time.Second, "two agency processes", func() bool { return len(processesOf(t, agencyBin)) == 2 })
				agencies := processesOf(t, agencyBin)
				if err := s.cmd.Process.Signal(sig); err != nil {
					t.Fatal(err)
				}
				want := 128 + int(sig)
				if code := s.wait(t); code != want {
					t.Errorf("exit %d after %s, want %d\n%s", code, sig, want, s.output())
				}
				for _, pid := range append(agencies, central) {
					if alive(pid) {
						t.Errorf("pid %d still running after the demo exited", pid)
					}
				}
				emptyDir(t, tmp)
			})
		}
	})
}

// findLine returns the first line of out matching re, or "".
func findLine(out string, re *regexp.Regexp) string {
	for l := range strings.Lines(out) {
		l = strings.TrimSuffix(l, "\n")
		if re.MatchString(l) {
			return l
		}
	}
	return ""
}

// checkDemoOutput checks a successful demo's stdout against the fixture.
func checkDemoOutput(t *testing.T, out string, fx fixture, round bool) {
	t.Helper()
	got := map[int][]string{}
	heads := map[int]int{} // agency → winners announced
	cur := 0
	lastDNILine := map[int]string{}
	var summary []string
	for l := range strings.Lines(out) {
		l = strings.TrimSuffix(l, "\n")
		if strings.Contains(l, "demo.sh") || strings.Contains(l, "DATA_DIR=") {
			t.Errorf("the demo echoes a command line: %q", l)
		}
		if logLineRE.MatchString(l) {
			t.Errorf("a raw log line in the demo's output: %q", l)
		}
		if m := headRE.FindStringSubmatch(l); m != nil {
			cur, _ = strconv.Atoi(m[1])
			if _, dup := heads[cur]; dup {
				t.Errorf("agency %d listed twice", cur)
			}
			heads[cur], _ = strconv.Atoi(m[3]) // "" (none) → 0
			if round != (m[2] == "1") {
				t.Errorf("line %q: round shown = %v, want %v", l, m[2] != "", round)
			}
			got[cur] = []string{}
			continue
		}
		if strings.HasPrefix(l, "      ") && cur != 0 {
			if len(l) > columns {
				t.Errorf("line of %d characters, over COLUMNS=%d: %q", len(l), columns, l)
			}
			if prev, ok := lastDNILine[cur]; ok && !strings.HasSuffix(prev, ";") {
				t.Errorf("agency %d: a wrapped line does not end at a ';': %q", cur, prev)
			}
			lastDNILine[cur] = l
			for _, d := range strings.Split(strings.TrimSuffix(strings.TrimSpace(l), ";"), ";") {
				if !slices.Contains(fx.winners[cur], d) {
					t.Errorf("agency %d: %q is not one of its winners (a number cut in two?)", cur, d)
				}
				got[cur] = append(got[cur], d)
			}
			continue
		}
		cur = 0
		if m := summaryRE.FindStringSubmatch(l); m != nil {
			summary = m
		}
	}
	total := 0
	for i := 1; i <= 3; i++ {
		want := fx.winners[i]
		total += len(want)
		if g, ok := got[i]; !ok {
			t.Errorf("agency %d: no winners shown", i)
		} else if !slices.Equal(g, want) {
			t.Errorf("agency %d: shown %d winners %v, want %d %v", i, len(g), g, len(want), want)
		}
		if heads[i] != len(want) {
			t.Errorf("agency %d: announced %d winners, want %d", i, heads[i], len(want))
		}
	}
	if !strings.Contains(out, "  agency 2: none\n") && !strings.Contains(out, "  agency 2, round 1: none\n") {
		t.Errorf("agency 2 has no winners and the demo does not say \"none\":\n%s", out)
	}
	if summary == nil {
		t.Fatalf("no summary line:\n%s", out)
	}
	if summary[1] != "3" || summary[2] != strconv.Itoa(fx.bets) || summary[3] != strconv.Itoa(total) {
		t.Errorf("summary %q: want 3 agencies, %d bets stored, %d winners", summary[0], fx.bets, total)
	}
	if m := centralRE.FindStringSubmatch(findLine(out, centralRE)); m == nil {
		t.Errorf("no line naming the central's pid and ports:\n%s", out)
	} else if pid, _ := strconv.Atoi(m[1]); alive(pid) {
		t.Errorf("the central (pid %d) outlived the demo", pid)
	}
	if m := storeRE.FindStringSubmatch(findLine(out, storeRE)); m == nil {
		t.Errorf("the demo does not say where its store is:\n%s", out)
	} else if _, err := os.Stat(m[1]); !os.IsNotExist(err) {
		t.Errorf("the demo's temporary store %s is still there (%v)", m[1], err)
	}
}
