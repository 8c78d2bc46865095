package readme

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/loteria/loteria/internal/testenv"
)

// TestProgramsIntroduceThemselves: every program's -h (and --help) says in
// its first line what the program is, shows how to call it with its
// subcommands, lists its flags, and exits 0.
func TestProgramsIntroduceThemselves(t *testing.T) {
	if testing.Short() {
		t.Skip("builds every program")
	}
	root := testenv.RepoRoot(t)
	// Every program: each directory under services/cmd, and the generator.
	pkgs := map[string]string{"generar-compose": "./deploy/cmd/generar-compose"}
	ents, err := os.ReadDir(filepath.Join(root, "services", "cmd"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.IsDir() {
			pkgs[e.Name()] = "./services/cmd/" + e.Name()
		}
	}
	// What each program's help must show beyond the common layout.
	type want struct {
		subcommands []string
		// pending: the program does not pass its one-line description
		// yet (settings.Set.Describe, called by services/central's and
		// services/agency's LoadConfig). Set false when it does.
		pending bool
	}
	wants := map[string]want{
		"central": {subcommands: []string{"healthcheck"}},
		"agency":  {subcommands: []string{"healthcheck"}},
	}

	bin := t.TempDir()
	names := make([]string, 0, len(pkgs))
	args := []string{"build", "-o", bin + string(os.PathSeparator)}
	for n, p := range pkgs {
		names = append(names, n)
		args = append(args, p)
	}
	sort.Strings(names)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, "go", args...)
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	for _, name := range names {
		for _, flag := range []string{"-h", "--help"} {
			t.Run(name+" "+flag, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				cmd := exec.CommandContext(ctx, filepath.Join(bin, name), flag)
				cmd.Dir = t.TempDir() // nothing to pick up (config.yaml) or write
				cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
				out, err := cmd.CombinedOutput()
				if err != nil {
					t.Fatalf("%s %s: %v (want exit status 0)\n%s", name, flag, err, out)
				}
				help := string(out)
				w := wants[name]
				first, _, _ := strings.Cut(help, "\n")
				if !w.pending {
					if !regexp.MustCompile(`^` + regexp.QuoteMeta(name) + `: \S.{20,}$`).MatchString(first) {
						t.Errorf("first line %q does not say what %s is (want \"%s: <what it is>\")", first, name, name)
					}
				}
				for _, s := range []string{"Usage:\n  " + name + " [flags]\n", "\nFlags:\n  --"} {
					if !strings.Contains(help, s) {
						t.Errorf("help lacks %q:\n%s", s, help)
					}
				}
				if !w.pending {
					for _, sc := range w.subcommands {
						if !regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(name+" "+sc) + `\b.*\S`).MatchString(help) {
							t.Errorf("help does not list the %s subcommand with what it does:\n%s", sc, help)
						}
					}
				}
				if strings.Contains(help, "Usage of ") || strings.Contains(help, "help requested") {
					t.Errorf("the flag package's bare help:\n%s", help)
				}
			})
		}
	}
}
