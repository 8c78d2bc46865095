// Package readme checks that the README tells the truth: its shell blocks
// run as written on a copy of the repository, make help lists every
// target, and every program's -h introduces it.
package readme

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/loteria/loteria/internal/testenv"
)

// block is one fenced ```sh block of a Markdown file.
type block struct {
	line  int    // where it starts (the fence)
	text  string // its lines
	needs string // what a "# needs: X" comment says it needs; "" when nothing
}

var needsRE = regexp.MustCompile(`#\s*needs:\s*([^#]*[^#\s])`)

// parseBlocks returns the ```sh (or ```bash) blocks of a Markdown text.
func parseBlocks(md string) ([]block, error) {
	var (
		blocks []block
		cur    *block
		body   strings.Builder
	)
	sc := bufio.NewScanner(strings.NewReader(md))
	for n := 1; sc.Scan(); n++ {
		l := sc.Text()
		trimmed := strings.TrimSpace(l)
		switch {
		case cur == nil && (trimmed == "```sh" || trimmed == "```bash" || trimmed == "```shell"):
			cur = &block{line: n}
			body.Reset()
		case cur != nil && trimmed == "```":
			cur.text = body.String()
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			body.WriteString(l + "\n")
			if m := needsRE.FindStringSubmatch(l); m != nil && cur.needs == "" {
				cur.needs = m[1]
			}
		}
	}
	if cur != nil {
		return nil, fmt.Errorf("the block opened on line %d is never closed", cur.line)
	}
	return blocks, sc.Err()
}

func TestParseBlocks(t *testing.T) {
	md := "# t\n\n```sh\nmake demo\n```\n\ntext\n\n```\nnot shell\n```\n\n```sh\nmake up   # needs: docker\nmake logs\n```\n"
	got, err := parseBlocks(md)
	if err != nil {
		t.Fatal(err)
	}
	want := []block{{line: 3, text: "make demo\n"}, {line: 13, text: "make up   # needs: docker\nmake logs\n", needs: "docker"}}
	if len(got) != len(want) {
		t.Fatalf("got %d blocks %+v, want %d", len(got), got, len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("block %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if _, err := parseBlocks("```sh\nmake demo\n"); err == nil {
		t.Error("an unclosed block was accepted")
	}
}

// name is a block's first command, for its subtest's name.
func (b block) name() string {
	for l := range strings.Lines(b.text) {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			if i := strings.Index(l, "#"); i > 0 {
				l = strings.TrimSpace(l[:i])
			}
			return fmt.Sprintf("line %d %s", b.line, l)
		}
	}
	return fmt.Sprintf("line %d", b.line)
}

// TestREADMEBlocks runs every shell block of README.md that can run on
// this machine, in order (as a reader would), in a copy of the
// repository, each under a deadline and in a network namespace of its own
// when the machine allows one (so the README's fixed ports are free). A
// block that needs what this machine cannot give says so with a
// "# needs: ..." comment and is skipped; any other block must exit 0 and
// leave no process running.
func TestREADMEBlocks(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the README's commands: builds and runs the programs")
	}
	root := testenv.RepoRoot(t)
	md, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := parseBlocks(string(md))
	if err != nil {
		t.Fatalf("README.md: %v", err)
	}
	// The README's promises this test exists for: they must stay blocks.
	for _, want := range []string{"make demo", "bin/central --clients 5 --store", "loadtest"} {
		found := false
		for _, b := range blocks {
			found = found || (b.needs == "" && strings.Contains(b.text, want))
		}
		if !found {
			t.Errorf("README.md has no runnable sh block with %q", want)
		}
	}

	isolate := netns(t)
	if isolate == nil {
		for _, p := range []string{"12345", "9464"} {
			if out, _ := exec.Command("ss", "-Hltn", "sport = :"+p).Output(); len(bytes.TrimSpace(out)) > 0 {
				testenv.Unavailable(t, "port %s is taken and this machine gives no network namespace (unshare -n) to run the README's blocks in", p)
			}
		}
	}
	repo := copyRepo(t, root)
	tmp := t.TempDir()
	for _, b := range blocks {
		t.Run(b.name(), func(t *testing.T) {
			if b.needs != "" {
				t.Skipf("needs %s (its # needs: comment)", b.needs)
			}
			runBlock(t, repo, tmp, isolate, b)
		})
	}
}

// netns returns the command prefix that runs a command in a new network
// namespace with its loopback up, or nil when the machine allows none.
func netns(t *testing.T) []string {
	t.Helper()
	for _, prefix := range [][]string{{"unshare", "--net"}, {"unshare", "--net", "--map-root-user"}} {
		args := append(append([]string{}, prefix...), "sh", "-c", "ip link set lo up && exec true")
		if err := exec.Command(args[0], args[1:]...).Run(); err == nil {
			return prefix
		}
	}
	t.Log("no network namespace available: the README's blocks run on this machine's loopback")
	return nil
}

// runBlock runs b with bash -euo pipefail in repo, its own process group,
// a 5-minute deadline, and fails when it fails or leaves a process behind.
func runBlock(t *testing.T, repo, tmp string, isolate []string, b block) {
	t.Helper()
	script := filepath.Join(t.TempDir(), "block.sh")
	if err := os.WriteFile(script, []byte(b.text), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"bash", "-euo", "pipefail", script}
	if isolate != nil {
		args = append(append([]string{}, isolate...), "bash", "-c", `ip link set lo up && exec bash -euo pipefail "$0"`, script)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Dir = repo
	cmd.Env = blockEnv(tmp)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	testenv.Child(cmd) // the block's shell only: what it starts, the group kill below stops
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// A file, not a pipe: a process the block leaves behind cannot hold
	// the test up, and is caught below instead.
	out, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	start := time.Now()
	runErr := cmd.Run()
	took := time.Since(start).Round(100 * time.Millisecond)
	pgid := cmd.Process.Pid
	left := syscall.Kill(-pgid, 0) == nil
	if left {
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	}
	if _, err := out.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	text, _ := io.ReadAll(out)
	t.Logf("README.md line %d, %s:\n%s\n--- output:\n%s", b.line, took, b.text, text)
	switch {
	case ctx.Err() != nil:
		t.Errorf("README.md line %d: still running after 5 minutes", b.line)
	case runErr != nil:
		t.Errorf("README.md line %d: the block failed: %v", b.line, runErr)
	}
	if left {
		t.Errorf("README.md line %d: the block left processes running (a block must stop what it starts)", b.line)
	}
	// make demo prints what the demo says, not the commands behind it.
	if strings.Contains(b.text, "make demo") {
		for _, echo := range []string{"scripts/demo.sh", "DATA_DIR="} {
			if bytes.Contains(text, []byte(echo)) {
				t.Errorf("README.md line %d: make demo echoes its command line (%q)", b.line, echo)
			}
		}
	}
}

// blockEnv is a reader's environment without the developer's settings
// (SERVER_PORT, METRICS_ADDR, OTEL_*...), with TMPDIR the test's.
func blockEnv(tmp string) []string {
	e := []string{"TMPDIR=" + tmp, "LANG=C.UTF-8", "COLUMNS=100"}
	for _, k := range []string{"PATH", "HOME", "GOCACHE", "GOMODCACHE", "GOPATH", "GOFLAGS", "GOTOOLCHAIN", "GOPROXY", "CI"} {
		if v, ok := os.LookupEnv(k); ok {
			e = append(e, k+"="+v)
		}
	}
	return e
}

// copyRepo copies the repository's files (tracked, and untracked ones git
// does not ignore: what a clone with the working tree's changes holds)
// into a new directory.
func copyRepo(t *testing.T, root string) string {
	t.Helper()
	cmd := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	cmd.Dir = root
	list, err := cmd.Output()
	if err != nil {
		testenv.Unavailable(t, "git ls-files in %s: %v (the README test copies the repository's files)", root, err)
	}
	dst := filepath.Join(t.TempDir(), "loteria")
	for _, rel := range strings.Split(strings.TrimSuffix(string(list), "\x00"), "\x00") {
		src := filepath.Join(root, rel)
		fi, err := os.Lstat(src)
		if os.IsNotExist(err) {
			continue // deleted in the working tree
		}
		if err != nil {
			t.Fatal(err)
		}
		to := filepath.Join(dst, rel)
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			t.Fatal(err)
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			target, err := os.Readlink(src)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, to); err != nil {
				t.Fatal(err)
			}
			continue
		}
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, b, fi.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
	// The official data sits beside the repository (../shared); so it
	// does beside the copy.
	if shared := filepath.Join(root, "..", "shared"); dirExists(shared) {
		if err := os.Symlink(shared, filepath.Join(filepath.Dir(dst), "shared")); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

func dirExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}
