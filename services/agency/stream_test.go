package agency

import (
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loteria/loteria/internal/testenv"
	"github.com/loteria/loteria/services/internal/datagen"
)

// readAll drains a source into wire lines.
func readAll(t *testing.T, src Source) []string {
	t.Helper()
	var out []string
	for {
		b, err := src.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, lineOf(b))
	}
	if c, ok := src.(io.Closer); ok {
		c.Close()
	}
	return out
}

// csvLines reads a bets file with encoding/csv into wire lines: the oracle.
func csvLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = 5
	var out []string
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, strings.Join(rec, ";"))
	}
}

func TestFileStream(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "agency-1.csv")
	content := "Ana María,Núñez,30111222,1990-01-31,7574\r\n\r\nLuis,Pérez,4000,1985-12-01,12\r\nZoë,D'Alessandro,12345678,2001-02-28,7574\r\nIñigo,Güemes,77,1970-07-07,0\r\n"
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := OpenFileStream(path, 1)
	if err != nil {
		t.Fatal(err)
	}
	want := csvLines(t, path)
	if s.Len() != int64(len(want)) {
		t.Fatalf("Len = %d, want %d", s.Len(), len(want))
	}
	sum := sha256.Sum256([]byte("loteria-stream-file-v1\n" + content))
	if fp := s.Fingerprint(); fp != hex.EncodeToString(sum[:])[:32] {
		t.Errorf("fingerprint %s, want the tagged SHA-256 of the file's bytes", fp)
	}
	// Every index of three rounds' chunks: the rest of that round's file.
	for from := int64(0); from < 3*s.Len(); from++ {
		src, err := s.Open(from)
		if err != nil {
			t.Fatal(err)
		}
		if got := readAll(t, src); !equalStrings(got, want[from%s.Len():]) {
			t.Fatalf("Open(%d) yields %q, want %q", from, got, want[from%s.Len():])
		}
	}
	// Another file under the same id has another fingerprint.
	other := filepath.Join(dir, "other.csv")
	os.WriteFile(other, []byte(strings.Replace(content, "7574", "7575", 1)), 0o644)
	o, err := OpenFileStream(other, 1)
	if err != nil {
		t.Fatal(err)
	}
	if o.Fingerprint() == s.Fingerprint() {
		t.Error("two different files share a fingerprint")
	}
	if _, err := OpenFileStream(filepath.Join(dir, "missing.csv"), 1); err == nil {
		t.Error("a missing file opened")
	}
}

func TestFileStreamEmpty(t *testing.T) {
	path := filepath.Join(t.TempDir(), "empty.csv")
	os.WriteFile(path, nil, 0o644)
	s, err := OpenFileStream(path, 1)
	if err != nil {
		t.Fatal(err)
	}
	src, err := s.Open(0)
	if err != nil {
		t.Fatal(err)
	}
	if s.Len() != 0 || len(readAll(t, src)) != 0 {
		t.Errorf("empty file: Len %d", s.Len())
	}
}

// TestFileStreamOfficialData: the official files reopen at any index.
func TestFileStreamOfficialData(t *testing.T) {
	dir := testenv.OfficialDataDir(t)
	path := testenv.AgencyFile(dir, 3)
	s, err := OpenFileStream(path, 3)
	if err != nil {
		t.Fatal(err)
	}
	want := csvLines(t, path)
	if s.Len() != int64(len(want)) {
		t.Fatalf("Len = %d, want %d", s.Len(), len(want))
	}
	for _, from := range []int64{0, 1, s.Len() / 2, s.Len() - 1, s.Len() + 7} {
		src, err := s.Open(from)
		if err != nil {
			t.Fatal(err)
		}
		if got := readAll(t, src); !equalStrings(got, want[from%s.Len():]) {
			t.Fatalf("Open(%d): %d bets, want %d", from, len(got), len(want[from%s.Len():]))
		}
	}
}

func TestGeneratedStream(t *testing.T) {
	const n = 300
	s, err := NewGeneratedStream(4, 11, n)
	if err != nil {
		t.Fatal(err)
	}
	// Round 1 is what gendata writes for the seed; round 2 another.
	var round1, round2 []string
	g1 := datagen.New(datagen.Options{Seed: 11, Agency: 4})
	g2 := datagen.New(datagen.Options{Seed: 11 + 0x9e3779b97f4a7c15, Agency: 4})
	for range n {
		round1 = append(round1, lineOf(g1.Next()))
		round2 = append(round2, lineOf(g2.Next()))
	}
	for _, from := range []int64{0, 1, 299, 300, 301, 599} {
		src, err := s.Open(from)
		if err != nil {
			t.Fatal(err)
		}
		want := round1[from%n:]
		if from >= n {
			want = round2[from%n:]
		}
		if got := readAll(t, src); !equalStrings(got, want) {
			t.Fatalf("Open(%d): %d bets, want %d (first %q, want %q)", from, len(got), len(want), got[0], want[0])
		}
	}
	if equalStrings(round1, round2) {
		t.Error("two rounds generated the same bets")
	}
	fps := map[string]bool{}
	for _, p := range [][3]int64{{4, 11, n}, {5, 11, n}, {4, 12, n}, {4, 11, n + 1}} {
		g, _ := NewGeneratedStream(int(p[0]), uint64(p[1]), p[2])
		fps[g.Fingerprint()] = true
		if err := validFingerprint(g.Fingerprint()); err != nil {
			t.Error(err)
		}
	}
	if len(fps) != 4 {
		t.Errorf("different generator parameters share fingerprints: %v", fps)
	}
	// A file with the generator's exact bets is still another stream.
	path := filepath.Join(t.TempDir(), "agency-4.csv")
	if _, err := datagen.WriteFile(path, datagen.Options{Seed: 11, Agency: 4}, n); err != nil {
		t.Fatal(err)
	}
	f, err := OpenFileStream(path, 4)
	if err != nil {
		t.Fatal(err)
	}
	if f.Fingerprint() == s.Fingerprint() {
		t.Error("a file and a generator share a fingerprint")
	}
}

func TestOneShot(t *testing.T) {
	bets := genBets(30, 5)
	s := OneShot(&betSlice{bets: bets}, "ab12", -1)
	if _, err := s.Open(1); err == nil {
		t.Error("opened at 1")
	}
	src, err := s.Open(0)
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, src); !equalStrings(got, linesOf(bets)) {
		t.Errorf("got %q", got)
	}
	if _, err := s.Open(0); err == nil {
		t.Error("opened twice")
	}
}
