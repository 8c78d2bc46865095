package render

import (
	"context"
	"fmt"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestLegend(t *testing.T) {
	tests := []struct {
		format string
		labels map[string]string
		want   string
	}{
		{"agency {{agency}}", map[string]string{"agency": "3"}, "agency 3"},
		{"{{agency}} {{reason}}", map[string]string{"agency": "1", "reason": "timeout"}, "1 timeout"},
		{"p{{quantile}}", map[string]string{}, "p"},
		{"bets", nil, "bets"},
	}
	for _, tt := range tests {
		if got := legend(tt.format, tt.labels); got != tt.want {
			t.Errorf("legend(%q, %v) = %q, want %q", tt.format, tt.labels, got, tt.want)
		}
	}
}

// TestAll renders every dashboard from a stand-in Prometheus that answers each range query with
// a ramp and each instant query with one value: every query is asked for, with its variables
// expanded, and the pictures are PNGs.
func TestAll(t *testing.T) {
	var mu sync.Mutex
	var asked []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query().Get("query")
		mu.Lock()
		asked = append(asked, q)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/api/v1/query_range":
			fmt.Fprint(w, `{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"agency":"1"},"values":[[1000,"1"],[1001,"2"],[1002,"3"]]}]}}`)
		case "/api/v1/query":
			fmt.Fprint(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{"agency":"2"},"value":[1002,"42"]}]}}`)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	dir := t.TempDir()
	start := time.Unix(1000, 0)
	files, err := All(context.Background(), Prometheus{URL: srv.URL}, start, start.Add(2*time.Second), time.Second, dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 {
		t.Fatalf("files %v, want one per dashboard", files)
	}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(fh)
		fh.Close()
		if err != nil || img.Bounds().Dx() < 1000 {
			t.Errorf("%s: %v, %v", filepath.Base(f), err, img)
		}
	}
	for _, q := range asked {
		if strings.Contains(q, "$") {
			t.Errorf("a query was sent with a variable left: %s", q)
		}
	}
	if len(asked) < 50 {
		t.Errorf("only %d queries asked", len(asked))
	}
}
