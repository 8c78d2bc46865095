package compose

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
)

// stampGenerator names the writer of a stamp.
const stampGenerator = "deploy/cmd/generar-compose"

// Settings are the options a stack was generated with, as a user gives them (paths relative to
// the repository root where they are inside it). Two plans with equal Settings write the same
// stack.
type Settings struct {
	Agencies     int     `json:"agencies"`
	Mode         string  `json:"mode"`
	DataDir      string  `json:"data_dir,omitempty"`
	TLS          bool    `json:"tls"`
	LoadAgencies int     `json:"load_agencies"`
	LoadRate     float64 `json:"load_rate"`
	LoadDuration string  `json:"load_duration"`
	Rate         float64 `json:"rate"`
	BetsPerRound int     `json:"bets_per_round,omitempty"`
	RoundCutoff  string  `json:"round_cutoff,omitempty"`
	BatchMax     int     `json:"batch_max"`
	Linger       string  `json:"linger"`
	LogFormat    string  `json:"log_format"`
	LogLevel     string  `json:"log_level"`
	Sampling     float64 `json:"sampling"`
}

// Stamp is what the generator writes beside the compose file (StampFile): the settings and the
// digest of the compose file it wrote, so a later run can tell a stack generated with other
// settings, or a compose file edited by hand, from its own.
type Stamp struct {
	Generator     string   `json:"generator"`
	Settings      Settings `json:"settings"`
	ComposeSHA256 string   `json:"compose_sha256"`
}

// Settings returns the plan's settings.
func (p *Plan) Settings() Settings {
	o := p.Options
	s := Settings{
		Agencies:     o.Agencies,
		Mode:         o.Mode,
		DataDir:      relToRoot(o.Root, o.DataDir),
		TLS:          o.TLS,
		LoadAgencies: o.LoadAgencies,
		LoadRate:     o.LoadRate,
		LoadDuration: o.LoadDuration.String(),
		Rate:         o.Rate,
		BatchMax:     o.BatchMaxAmount,
		Linger:       o.Linger.String(),
		LogFormat:    o.LogFormat,
		LogLevel:     o.LogLevel,
		Sampling:     o.Sampling,
	}
	if o.NoLoad {
		s.LoadRate, s.LoadDuration = 0, ""
	}
	if !o.OneShot() {
		s.BetsPerRound = o.BetsPerRound
		s.RoundCutoff = o.RoundCutoff.String()
	}
	return s
}

func relToRoot(root, p string) string {
	if p == "" {
		return ""
	}
	if r, err := filepath.Rel(root, p); err == nil {
		return filepath.ToSlash(r)
	}
	return p
}

// Diff lists, one "name: old -> new" line each, the settings that differ between s (what is on
// disk) and t (what is asked for).
func (s Settings) Diff(t Settings) []string {
	var out []string
	add := func(name string, a, b any) {
		if fmt.Sprint(a) != fmt.Sprint(b) {
			out = append(out, fmt.Sprintf("%s: %v -> %v", name, show(a), show(b)))
		}
	}
	add("agencies", s.Agencies, t.Agencies)
	add("mode", s.Mode, t.Mode)
	add("data dir", s.DataDir, t.DataDir)
	add("tls", s.TLS, t.TLS)
	add("load agencies", s.LoadAgencies, t.LoadAgencies)
	add("load rate", s.LoadRate, t.LoadRate)
	add("load duration", s.LoadDuration, t.LoadDuration)
	add("rate", s.Rate, t.Rate)
	add("bets per round", s.BetsPerRound, t.BetsPerRound)
	add("round cut-off", s.RoundCutoff, t.RoundCutoff)
	add("batch max", s.BatchMax, t.BatchMax)
	add("linger", s.Linger, t.Linger)
	add("log format", s.LogFormat, t.LogFormat)
	add("log level", s.LogLevel, t.LogLevel)
	add("sampling", s.Sampling, t.Sampling)
	return out
}

func show(v any) string {
	if s, ok := v.(string); ok && s == "" {
		return "(none)"
	}
	if i, ok := v.(int); ok && i == 0 {
		return "0"
	}
	return fmt.Sprint(v)
}

// Summary is the settings in a few words, for messages.
func (s Settings) Summary() string {
	out := strconv.Itoa(s.Agencies) + " agencies, " + s.Mode
	if s.DataDir != "" {
		out += ", data " + s.DataDir
	}
	if s.TLS {
		out += ", TLS"
	}
	if s.LoadAgencies > 0 {
		out += ", load profile of " + strconv.Itoa(s.LoadAgencies)
	}
	return out
}

// State is what is at a compose file's path.
type State struct {
	// Exists is true when there is a file at the path.
	Exists bool
	// Stamp is the stamp beside it, nil when there is none (a file this generator did not write).
	Stamp *Stamp
	// Edited is true when the file's digest differs from its stamp's.
	Edited bool
}

// Inspect reads what is at output and beside it.
func Inspect(output string) (State, error) {
	data, err := os.ReadFile(output)
	if errors.Is(err, fs.ErrNotExist) {
		return State{}, nil
	}
	if err != nil {
		return State{}, fmt.Errorf("read %s: %w", output, err)
	}
	st := State{Exists: true}
	raw, err := os.ReadFile(filepath.Join(filepath.Dir(output), StampFile))
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("read the stamp of %s: %w", output, err)
	}
	var s Stamp
	if err := json.Unmarshal(raw, &s); err != nil || s.Generator != stampGenerator {
		return st, nil // not ours, or damaged: treat the compose file as the user's
	}
	st.Stamp = &s
	st.Edited = s.ComposeSHA256 != sha256Hex(data)
	return st, nil
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
