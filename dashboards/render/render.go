// Package render draws a dashboard's panels as one PNG from a real Prometheus: each panel's
// queries, run as Grafana runs them (range queries over the time range, instant queries at its
// end with $__range the whole range), plotted with gonum/plot. Grafana itself cannot run where
// loteria is developed, so the pictures in docs/img are these: the panels' data, not Grafana's
// look.
package render

import (
	"context"
	"encoding/json"
	"fmt"
	"image/color"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/loteria/loteria/dashboards"
)

// Prometheus answers the queries (its base URL, e.g. http://127.0.0.1:9090).
type Prometheus struct {
	URL    string
	Client *http.Client
}

// Series is one series of a query's answer.
type Series struct {
	Labels map[string]string
	T      []float64 // unix seconds
	V      []float64
}

func (p Prometheus) get(ctx context.Context, path string, params url.Values, out any) error {
	c := p.Client
	if c == nil {
		c = &http.Client{Timeout: 30 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(p.URL, "/")+path+"?"+params.Encode(), nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	var env struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return fmt.Errorf("prometheus %s: %s: %w", path, resp.Status, err)
	}
	if env.Status != "success" {
		return fmt.Errorf("prometheus %s %s: %s", path, params.Get("query"), env.Error)
	}
	return json.Unmarshal(env.Data, out)
}

// Query runs expr as a range query (step) or, instant, at end.
func (p Prometheus) Query(ctx context.Context, expr string, instant bool, start, end time.Time, step time.Duration) ([]Series, error) {
	ts := func(t time.Time) string { return strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', 3, 64) }
	var data struct {
		Result []struct {
			Metric map[string]string `json:"metric"`
			Value  []any             `json:"value"`
			Values [][]any           `json:"values"`
		} `json:"result"`
	}
	var err error
	if instant {
		err = p.get(ctx, "/api/v1/query", url.Values{"query": {expr}, "time": {ts(end)}}, &data)
	} else {
		err = p.get(ctx, "/api/v1/query_range", url.Values{"query": {expr}, "start": {ts(start)}, "end": {ts(end)}, "step": {strconv.FormatFloat(step.Seconds(), 'f', -1, 64)}}, &data)
	}
	if err != nil {
		return nil, err
	}
	var out []Series
	for _, r := range data.Result {
		s := Series{Labels: r.Metric}
		pts := r.Values
		if instant {
			pts = [][]any{r.Value}
		}
		for _, pt := range pts {
			if len(pt) != 2 {
				continue
			}
			t, _ := pt[0].(float64)
			vs, _ := pt[1].(string)
			v, err := strconv.ParseFloat(vs, 64)
			if err != nil {
				continue
			}
			s.T, s.V = append(s.T, t), append(s.V, v)
		}
		out = append(out, s)
	}
	return out, nil
}

// panel is what the renderer needs of a dashboard panel.
type panel struct {
	title, kind string
	y, x        uint32
	queries     []prometheus.Dataquery
}

func panels(d dashboard.Dashboard) []panel {
	var out []panel
	for _, p := range d.Panels {
		if p.Panel == nil {
			continue
		}
		pp := panel{title: deref(p.Panel.Title), kind: p.Panel.Type}
		if p.Panel.GridPos != nil {
			pp.y, pp.x = p.Panel.GridPos.Y, p.Panel.GridPos.X
		}
		for _, tg := range p.Panel.Targets {
			if q, ok := tg.(prometheus.Dataquery); ok {
				pp.queries = append(pp.queries, q)
			}
		}
		out = append(out, pp)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].y != out[j].y {
			return out[i].y < out[j].y
		}
		return out[i].x < out[j].x
	})
	return out
}

func deref[T any](p *T) T {
	var z T
	if p == nil {
		return z
	}
	return *p
}

// legend renders Grafana's {{label}} legend format.
func legend(format string, labels map[string]string) string {
	if format == "" {
		return fmt.Sprint(labels)
	}
	out := format
	for k, v := range labels {
		out = strings.ReplaceAll(out, "{{"+k+"}}", v)
	}
	for strings.Contains(out, "{{") {
		i := strings.Index(out, "{{")
		j := strings.Index(out[i:], "}}")
		if j < 0 {
			break
		}
		out = out[:i] + out[i+j+2:]
	}
	return strings.TrimSpace(out)
}

// Columns is how many panels a row of the picture holds.
const Columns = 3

// Dashboard renders one dashboard's panels over [start, end] into a PNG file.
func Dashboard(ctx context.Context, p Prometheus, d dashboard.Dashboard, start, end time.Time, step time.Duration, file string) error {
	ps := panels(d)
	rows := (len(ps) + Columns - 1) / Columns
	const tileW, tileH = 6 * vg.Inch, 3.2 * vg.Inch
	img := vgimg.New(tileW*Columns, tileH*vg.Length(rows)+0.5*vg.Inch)
	dc := draw.New(img)
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())
	title := deref(d.Title) + fmt.Sprintf(" — rendered from Prometheus, %s to %s (UTC), not a Grafana screenshot", start.UTC().Format("2006-01-02 15:04:05"), end.UTC().Format("15:04:05"))
	font := plot.DefaultFont
	font.Size = vg.Points(14)
	sty := draw.TextStyle{Color: color.Black, Font: font, Handler: plot.DefaultTextHandler}
	dc.FillText(sty, vg.Point{X: 0.2 * vg.Inch, Y: dc.Max.Y - 0.35*vg.Inch}, title)
	body := draw.Canvas{Canvas: dc.Canvas, Rectangle: vg.Rectangle{Min: dc.Min, Max: vg.Point{X: dc.Max.X, Y: dc.Max.Y - 0.5*vg.Inch}}}
	tiles := draw.Tiles{Rows: rows, Cols: Columns, PadX: 0.1 * vg.Inch, PadY: 0.1 * vg.Inch}
	rng := strconv.Itoa(int(math.Ceil(end.Sub(start).Seconds()))) + "s"
	rate := strconv.Itoa(int(4*step.Seconds())) + "s"
	// Programs that do not hold rounds export no loteria_round: the round filter would hide
	// everything, so it is left out, as tests/stack's panel check does.
	rounds, err := p.Query(ctx, "count(max_over_time(loteria_round["+rng+"]))", true, start, end, step)
	if err != nil {
		return err
	}
	noRounds := len(rounds) == 0
	for i, pn := range ps {
		if noRounds {
			for k := range pn.queries {
				pn.queries[k].Expr = strings.ReplaceAll(pn.queries[k].Expr, " and on () (max(loteria_round) == $round)", "")
			}
		}
		pl, err := panelPlot(ctx, p, pn, start, end, step, rate, rng)
		if err != nil {
			return fmt.Errorf("panel %q: %w", pn.title, err)
		}
		pl.Draw(tiles.At(body, i%Columns, i/Columns))
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func panelPlot(ctx context.Context, p Prometheus, pn panel, start, end time.Time, step time.Duration, rate, rng string) (*plot.Plot, error) {
	pl := plot.New()
	pl.Title.Text = pn.title
	pl.X.Label.Text = "seconds into the run"
	pl.Legend.Top = true
	pl.Legend.TextStyle.Font.Size = vg.Points(7)
	var values []string
	lines := 0
	for _, q := range pn.queries {
		expr := dashboards.ExpandRange(q.Expr, rate, rng)
		instant := q.Instant != nil && *q.Instant
		series, err := p.Query(ctx, expr, instant, start, end, step)
		if err != nil {
			values = append(values, "error: "+err.Error())
			continue
		}
		sort.Slice(series, func(i, j int) bool { return fmt.Sprint(series[i].Labels) < fmt.Sprint(series[j].Labels) })
		for _, s := range series {
			name := legend(deref(q.LegendFormat), s.Labels)
			if instant || pn.kind == "stat" || pn.kind == "gauge" || pn.kind == "bargauge" {
				if n := len(s.V); n > 0 {
					values = append(values, fmt.Sprintf("%s: %s", name, format(s.V[n-1])))
				}
				continue
			}
			xy := make(plotter.XYs, 0, len(s.T))
			for k := range s.T {
				if math.IsNaN(s.V[k]) || math.IsInf(s.V[k], 0) {
					continue
				}
				xy = append(xy, plotter.XY{X: s.T[k] - float64(start.Unix()), Y: s.V[k]})
			}
			if len(xy) == 0 {
				continue
			}
			l, err := plotter.NewLine(xy)
			if err != nil {
				return nil, err
			}
			l.Color = plotutil.Color(lines)
			lines++
			pl.Add(l)
			if lines <= 8 {
				pl.Legend.Add(name, l)
			}
		}
	}
	if len(values) > 0 || lines == 0 {
		if len(values) == 0 {
			values = []string{"no data (the programs of this run do not export these metrics)"}
		}
		pl.X.Label.Text = ""
		if len(values) > 10 {
			values = append(values[:10], fmt.Sprintf("... %d more", len(values)-10))
		}
		labels, err := plotter.NewLabels(plotter.XYLabels{XYs: textPositions(len(values)), Labels: values})
		if err != nil {
			return nil, err
		}
		for k := range labels.TextStyle {
			labels.TextStyle[k].Font.Size = vg.Points(11)
		}
		pl.Add(labels)
		pl.HideAxes()
		pl.X.Min, pl.X.Max, pl.Y.Min, pl.Y.Max = 0, 1, 0, 1
	}
	return pl, nil
}

func textPositions(n int) plotter.XYs {
	out := make(plotter.XYs, n)
	for i := range out {
		out[i] = plotter.XY{X: 0.05, Y: 0.9 - float64(i)*0.09}
	}
	return out
}

func format(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case v == math.Trunc(v) && math.Abs(v) < 1e12:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case math.Abs(v) < 0.01:
		return strconv.FormatFloat(v, 'g', 3, 64)
	default:
		return strconv.FormatFloat(v, 'f', 3, 64)
	}
}

// All renders every dashboard into dir/<uid>.png and returns the files written.
func All(ctx context.Context, p Prometheus, start, end time.Time, step time.Duration, dir string) ([]string, error) {
	ds, err := dashboards.Dashboards()
	if err != nil {
		return nil, err
	}
	var files []string
	for _, d := range ds {
		f := filepath.Join(dir, deref(d.Uid)+".png")
		if err := Dashboard(ctx, p, d, start, end, step, f); err != nil {
			return files, fmt.Errorf("dashboard %s: %w", deref(d.Uid), err)
		}
		files = append(files, f)
	}
	return files, nil
}
