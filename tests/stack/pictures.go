package stack

import (
	"context"
	"testing"
	"time"

	"github.com/loteria/loteria/dashboards/render"
)

// renderPictures draws every dashboard from prom's data of the run into dir (make pictures).
func renderPictures(t *testing.T, prom *Prometheus, start, end time.Time, dir string) {
	t.Helper()
	files, err := render.All(context.Background(), render.Prometheus{URL: prom.URL}, start, end, time.Second, dir)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	t.Logf("pictures: %v", files)
}
