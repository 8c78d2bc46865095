// Package usage gives every loteria program the same -h: one line saying
// what the program is, how to call it (its subcommands too), its flags, and
// exit status 0. A bad flag is one line that names it and says how to see
// the help, instead of the flag package's whole listing.
//
// It sits in the module's top-level internal/ so that programs outside
// services/ (deploy/cmd/generar-compose) can use it; services/internal/settings
// builds on it for the programs whose flags are settings.
package usage

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// Subcommand is a word that, given first, makes the program do something
// else (e.g. "healthcheck").
type Subcommand struct {
	Name    string // e.g. "healthcheck"
	Args    string // its own arguments, e.g. "[--url URL]"
	Summary string // one line: what it does
}

// Program describes a program for its -h.
type Program struct {
	Name string
	// Summary is one line saying what the program is, e.g. "the Lotería
	// Nacional server: ...". Programs should always give one.
	Summary string
	// Args follow the name in the synopsis; "[flags]" when empty.
	Args        string
	Subcommands []Subcommand
	// Notes are paragraphs printed after the flags (precedence rules, where
	// the documentation is, an example).
	Notes []string
}

// Write writes p's help, listing fs's flags, to w. A flag's kind (int,
// string, ...) is the flag package's word for its own types, the
// back-quoted word of its usage, or what its Value's Kind method says.
func Write(w io.Writer, p Program, fs *flag.FlagSet) {
	var b strings.Builder
	name := p.Name
	if name == "" {
		name = fs.Name()
	}
	if p.Summary != "" {
		fmt.Fprintf(&b, "%s: %s\n\n", name, p.Summary)
	}
	args := p.Args
	if args == "" {
		args = "[flags]"
	}
	b.WriteString("Usage:\n")
	fmt.Fprintf(&b, "  %s %s\n", name, args)
	width := 0
	for _, sc := range p.Subcommands {
		width = max(width, len(synopsis(name, sc)))
	}
	for _, sc := range p.Subcommands {
		fmt.Fprintf(&b, "  %-*s   %s\n", width, synopsis(name, sc), sc.Summary)
	}
	first := true
	fs.VisitAll(func(f *flag.Flag) {
		if first {
			b.WriteString("\nFlags:\n")
			first = false
		}
		kind, text := flag.UnquoteUsage(f)
		if k, ok := f.Value.(interface{ Kind() string }); ok && kind == "value" {
			kind = k.Kind()
		}
		b.WriteString("  --" + f.Name)
		if kind != "" {
			b.WriteString(" " + kind)
		}
		b.WriteString("\n        " + text)
		if d := f.DefValue; !isZero(d) {
			if kind == "string" || strings.ContainsAny(d, " \t") {
				d = fmt.Sprintf("%q", d)
			}
			b.WriteString(" (default " + d + ")")
		}
		b.WriteString("\n")
	})
	for _, n := range p.Notes {
		b.WriteString("\n" + n + "\n")
	}
	io.WriteString(w, b.String())
}

func synopsis(name string, sc Subcommand) string {
	s := name + " " + sc.Name
	if sc.Args != "" {
		s += " " + sc.Args
	}
	return s
}

// isZero reports whether a default is not worth printing, as the flag
// package does for the zero values of its own types.
func isZero(def string) bool {
	switch def {
	case "", "0", "false", "0s":
		return true
	}
	return false
}

// Install makes fs.Usage write p's help to fs.Output(), for code that calls
// fs.Parse itself.
func Install(fs *flag.FlagSet, p Program) {
	fs.Usage = func() { Write(fs.Output(), p, fs) }
}

// Parse parses args with fs (which must use flag.ContinueOnError). On -h or
// --help it writes p's help to fs.Output() and returns flag.ErrHelp, which
// the program turns into exit status 0. On a bad flag it prints nothing and
// returns the flag package's error followed by how to see the help, for the
// program to print once.
func Parse(fs *flag.FlagSet, p Program, args []string) error {
	out, usageFn := fs.Output(), fs.Usage
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	err := fs.Parse(args)
	fs.SetOutput(out)
	fs.Usage = usageFn
	switch {
	case errors.Is(err, flag.ErrHelp):
		Write(out, p, fs)
		return flag.ErrHelp
	case err != nil:
		name := p.Name
		if name == "" {
			name = fs.Name()
		}
		return fmt.Errorf("%w (%s -h lists every flag)", err, name)
	}
	return nil
}
