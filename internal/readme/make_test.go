package readme

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/loteria/loteria/internal/testenv"
)

// TestMakeHelpListsEveryTarget: the README says make help lists every
// target; the Makefile's rules are read here with a regexp of our own.
func TestMakeHelpListsEveryTarget(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		testenv.Unavailable(t, "make not installed")
	}
	root := testenv.RepoRoot(t)
	mk, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	rule := regexp.MustCompile(`(?m)^([a-z][a-z0-9-]*):([^=]|$)`)
	var targets []string
	for _, m := range rule.FindAllStringSubmatch(string(mk), -1) {
		targets = append(targets, m[1])
	}
	if len(targets) < 10 {
		t.Fatalf("found only %d rules in the Makefile (%v): is the pattern still right?", len(targets), targets)
	}
	cmd := exec.Command("make", "-s", "help")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make help: %v\n%s", err, out)
	}
	listed := map[string]bool{}
	for l := range strings.Lines(string(out)) {
		if f := strings.Fields(l); len(f) > 0 {
			listed[f[0]] = true
		}
	}
	for _, tg := range targets {
		if !listed[tg] {
			t.Errorf("make help does not list %q:\n%s", tg, out)
		}
	}
}
