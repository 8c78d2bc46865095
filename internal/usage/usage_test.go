package usage_test

import (
	"bytes"
	"errors"
	"flag"
	"strings"
	"testing"

	"github.com/loteria/loteria/internal/usage"
)

// newFlags is a small program's flag set writing to out.
func newFlags(out *bytes.Buffer) *flag.FlagSet {
	fs := flag.NewFlagSet("prog", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Int("agencies", 5, "number of agencies")
	fs.String("out", "", "output directory")
	fs.String("title", "a b", "a title")
	fs.Bool("quiet", false, "no progress lines")
	fs.Duration("timeout", 0, "how long to wait for `DURATION`")
	return fs
}

var prog = usage.Program{
	Name:    "prog",
	Summary: "writes test files for the usage package",
	Subcommands: []usage.Subcommand{
		{Name: "healthcheck", Args: "[--url URL]", Summary: "probe a running prog"},
		{Name: "version", Summary: "print the version"},
	},
	Notes: []string{"See docs/PROG.md."},
}

func TestWrite(t *testing.T) {
	tests := []struct {
		name    string
		p       usage.Program
		want    []string // lines (trimmed) that must appear, in this order
		notWant []string // substrings that must not appear
	}{
		{
			name: "full description",
			p:    prog,
			want: []string{
				"prog: writes test files for the usage package",
				"Usage:",
				"prog [flags]",
				"prog healthcheck [--url URL]   probe a running prog",
				"prog version                   print the version",
				"Flags:",
				"--agencies int",
				"number of agencies (default 5)",
				"--out string",
				"output directory",
				"--quiet",
				"no progress lines",
				"--timeout DURATION",
				"how long to wait for DURATION",
				`a title (default "a b")`,
				"See docs/PROG.md.",
			},
			notWant: []string{"(default 0s)", "(default false)", `(default "")`, "Usage of"},
		},
		{
			name:    "no summary: starts with the synopsis",
			p:       usage.Program{Name: "prog", Args: "[flags] FILE..."},
			want:    []string{"Usage:", "prog [flags] FILE...", "Flags:"},
			notWant: []string{"prog:", "healthcheck"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			fs := newFlags(&out)
			usage.Write(&out, tt.p, fs)
			got := out.String()
			lines := strings.Split(got, "\n")
			i := 0
			for _, w := range tt.want {
				for i < len(lines) && !strings.Contains(strings.TrimSpace(lines[i]), w) {
					i++
				}
				if i == len(lines) {
					t.Fatalf("help lacks %q (or has it out of order):\n%s", w, got)
				}
			}
			for _, nw := range tt.notWant {
				if strings.Contains(got, nw) {
					t.Errorf("help contains %q:\n%s", nw, got)
				}
			}
			if tt.p.Summary != "" && lines[0] != "prog: "+tt.p.Summary {
				t.Errorf("first line %q does not say what the program is", lines[0])
			}
		})
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		wantHelp  bool   // ErrHelp and the help written
		wantErr   string // substring of the error; "" means none
		wantQuiet bool
	}{
		{name: "-h", args: []string{"-h"}, wantHelp: true},
		{name: "--help", args: []string{"--help"}, wantHelp: true},
		{name: "-h after flags", args: []string{"--quiet", "-h"}, wantHelp: true, wantQuiet: true},
		{name: "unknown flag", args: []string{"--nope"}, wantErr: "-nope"},
		{name: "bad value", args: []string{"--agencies=many"}, wantErr: "agencies"},
		{name: "good flags", args: []string{"--quiet", "--agencies", "3"}, wantQuiet: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			fs := newFlags(&out)
			quiet := fs.Lookup("quiet")
			err := usage.Parse(fs, prog, tt.args)
			switch {
			case tt.wantHelp:
				if !errors.Is(err, flag.ErrHelp) {
					t.Fatalf("Parse(%q) = %v, want flag.ErrHelp", tt.args, err)
				}
				if !strings.HasPrefix(out.String(), "prog: "+prog.Summary+"\n") {
					t.Errorf("help does not start with the summary:\n%s", out.String())
				}
			case tt.wantErr != "":
				if err == nil || errors.Is(err, flag.ErrHelp) {
					t.Fatalf("Parse(%q) = %v, want an error", tt.args, err)
				}
				for _, w := range []string{tt.wantErr, "prog -h"} {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %q", err, w)
					}
				}
				if out.Len() != 0 {
					t.Errorf("a bad flag printed %q; the program prints the error once", out.String())
				}
			default:
				if err != nil {
					t.Fatalf("Parse(%q): %v", tt.args, err)
				}
				if out.Len() != 0 {
					t.Errorf("good flags printed %q", out.String())
				}
			}
			if got := quiet.Value.String() == "true"; got != tt.wantQuiet {
				t.Errorf("--quiet = %v, want %v", got, tt.wantQuiet)
			}
		})
	}
}

// TestParseRestoresUsage: after Parse, fs.Usage and the output are the
// caller's again (a later fs.Usage() call writes where it did before).
func TestParseRestoresUsage(t *testing.T) {
	var out bytes.Buffer
	fs := newFlags(&out)
	usage.Install(fs, prog)
	if err := usage.Parse(fs, prog, []string{"--nope"}); err == nil {
		t.Fatal("Parse accepted an unknown flag")
	}
	fs.Usage()
	if !strings.HasPrefix(out.String(), "prog: ") {
		t.Errorf("fs.Usage after Parse wrote %q, want the help", out.String())
	}
}
