package store

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/loteria/loteria/internal/testenv"
)

func TestMetrics(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bets.csv")
	s := openT(t, path, Options{})
	must(t)(submit(s, 1, 0, 0, 4))
	closeT(t, s)
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString("1,torn row")
	f.Close()

	reg := prometheus.NewPedanticRegistry()
	var logs testenv.Buffer
	s = openT(t, path, Options{Registerer: reg, SlowSync: time.Nanosecond,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	for i := range 3 {
		must(t)(submit(s, 1, int64(4+i), int64(4+i), 1))
	}
	// Read once closed: an open store's files end in the zeros its writer
	// keeps ahead, which the size metrics do not count.
	closeT(t, s)
	data, _ := os.ReadFile(path)
	journal, _ := os.ReadFile(journalPath(path))
	checks := []struct {
		name string
		c    prometheus.Collector
		want float64
	}{
		{"loteria_store_size_bytes", s.m.size, float64(len(data))},
		{"loteria_store_journal_bytes", s.m.journal, float64(len(journal))},
		{"loteria_store_quarantined_bytes", s.m.quarantined, float64(len("1,torn row"))},
		{"loteria_store_failed", s.m.failed, 0},
	}
	for _, c := range checks {
		if got := testutil.ToFloat64(c.c); got != c.want {
			t.Errorf("%s = %v, want %v", c.name, got, c.want)
		}
	}
	if got, opened := testutil.ToFloat64(s.m.bytes), float64(len(data)-int(s.Recovered().Bytes)); got != opened {
		t.Errorf("loteria_store_bytes_written_total = %v, want %v", got, opened)
	}
	if got := testutil.ToFloat64(s.m.recovery); got <= 0 {
		t.Errorf("loteria_store_recovery_seconds = %v", got)
	}
	if n := testutil.CollectAndCount(reg); n != 8 {
		t.Errorf("%d store metrics registered, want 8", n)
	}
	out := logs.String()
	// Three slow syncs: the first is logged, the next two are held back
	// by the rate limit.
	if n := strings.Count(out, "slow fsync"); n != 1 {
		t.Errorf("%d slow-sync records, want 1 (rate-limited):\n%s", n, out)
	}
	if !strings.Contains(out, "quarantine=") {
		t.Errorf("recovery's quarantine was not logged:\n%s", out)
	}
	if strings.Contains(out, "José") || strings.Contains(out, "10000000") {
		t.Errorf("the log holds personal data:\n%s", out)
	}
}
