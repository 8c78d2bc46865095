package dashboards

import (
	"github.com/grafana/grafana-foundation-sdk/go/bargauge"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/gauge"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// Panel sizes on Grafana's 24-column grid.
const (
	fullWidth    = 24
	halfWidth    = 12
	thirdWidth   = 8
	quarterWidth = 6
	eighthWidth  = 3
	statWidth    = 4
	statHeight   = 4
	graphHeight  = 8
)

// Units (Grafana unit ids; "suffix:" is a custom unit).
const (
	unitSeconds    = "s"
	unitBytes      = "bytes"
	unitBytesRate  = "Bps"
	unitShort      = "short"
	unitPercent    = "percentunit"
	unitBetsPerSec = "suffix: bets/s"
	unitPerSec     = "suffix: /s"
	unitNone       = "none"
)

// ids hands out panel ids, unique within one dashboard.
type ids struct{ last uint32 }

func (i *ids) next() uint32 {
	i.last++
	return i.last
}

func ptr[T any](v T) *T { return &v }

func promDatasource() common.DataSourceRef {
	return common.DataSourceRef{Type: ptr("prometheus"), Uid: ptr(PrometheusUID)}
}

// query is a range query on the provisioned Prometheus datasource.
func query(ref, expr, legend string) *prometheus.DataqueryBuilder {
	return prometheus.NewDataqueryBuilder().
		Datasource(promDatasource()).
		RefId(ref).
		Expr(expr).
		LegendFormat(legend).
		EditorMode(prometheus.QueryEditorModeCode).
		Range()
}

// instant is an instant query: the latest value only (bar gauges, current states).
func instant(ref, expr, legend string) *prometheus.DataqueryBuilder {
	return prometheus.NewDataqueryBuilder().
		Datasource(promDatasource()).
		RefId(ref).
		Expr(expr).
		LegendFormat(legend).
		EditorMode(prometheus.QueryEditorModeCode).
		Format(prometheus.PromQueryFormatTimeSeries).
		Instant()
}

func row(i *ids, title string) *dashboard.RowBuilder {
	return dashboard.NewRowBuilder(title).Id(i.next()).Collapsed(false)
}

func thresholds(steps ...dashboard.Threshold) *dashboard.ThresholdsConfigBuilder {
	return dashboard.NewThresholdsConfigBuilder().Mode(dashboard.ThresholdsModeAbsolute).Steps(steps)
}

func step(value *float64, color string) dashboard.Threshold {
	return dashboard.Threshold{Value: value, Color: color}
}

func greenOnly() *dashboard.ThresholdsConfigBuilder {
	return thresholds(step(nil, "green"))
}

func lastNotNull() *common.ReduceDataOptionsBuilder {
	return common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"}).Values(false)
}

func graph(i *ids, title, description, unit string, w uint32, queries ...*prometheus.DataqueryBuilder) *timeseries.PanelBuilder {
	p := timeseries.NewPanelBuilder().
		Id(i.next()).
		Title(title).
		Description(description).
		Datasource(promDatasource()).
		Unit(unit).
		Span(w).
		Height(graphHeight).
		FillOpacity(10).
		LineWidth(1).
		ShowPoints(common.VisibilityModeNever).
		Thresholds(greenOnly()).
		ColorScheme(dashboard.NewFieldColorBuilder().Mode(dashboard.FieldColorModeIdPaletteClassic)).
		Legend(common.NewVizLegendOptionsBuilder().
			DisplayMode(common.LegendDisplayModeList).
			Placement(common.LegendPlacementBottom).
			ShowLegend(true)).
		Tooltip(common.NewVizTooltipOptionsBuilder().
			Mode(common.TooltipDisplayModeMulti).
			Sort(common.SortOrderDescending))
	for _, q := range queries {
		p.WithTarget(q)
	}
	return p
}

func single(i *ids, title, description, unit string, queries ...*prometheus.DataqueryBuilder) *stat.PanelBuilder {
	p := stat.NewPanelBuilder().
		Id(i.next()).
		Title(title).
		Description(description).
		Datasource(promDatasource()).
		Unit(unit).
		Span(statWidth).
		Height(statHeight).
		Thresholds(greenOnly()).
		ColorMode(common.BigValueColorModeValue).
		GraphMode(common.BigValueGraphModeArea).
		TextMode(common.BigValueTextModeAuto).
		JustifyMode(common.BigValueJustifyModeAuto).
		ReduceOptions(lastNotNull())
	for _, q := range queries {
		p.WithTarget(q)
	}
	return p
}

func dial(i *ids, title, description, unit string, w uint32, queries ...*prometheus.DataqueryBuilder) *gauge.PanelBuilder {
	p := gauge.NewPanelBuilder().
		Id(i.next()).
		Title(title).
		Description(description).
		Datasource(promDatasource()).
		Unit(unit).
		Span(w).
		Height(graphHeight).
		ShowThresholdMarkers(true).
		ShowThresholdLabels(false).
		ReduceOptions(lastNotNull())
	for _, q := range queries {
		p.WithTarget(q)
	}
	return p
}

func bars(i *ids, title, description, unit string, w uint32, queries ...*prometheus.DataqueryBuilder) *bargauge.PanelBuilder {
	p := bargauge.NewPanelBuilder().
		Id(i.next()).
		Title(title).
		Description(description).
		Datasource(promDatasource()).
		Unit(unit).
		Span(w).
		Height(graphHeight).
		Min(0).
		Thresholds(greenOnly()).
		DisplayMode(common.BarGaugeDisplayModeGradient).
		ValueMode(common.BarGaugeValueModeColor).
		Orientation(common.VizOrientationHorizontal).
		ShowUnfilled(true).
		ReduceOptions(lastNotNull())
	for _, q := range queries {
		p.WithTarget(q)
	}
	return p
}

// textMapping shows a fixed text and color for one exact value.
func textMapping(value, text, color string) dashboard.ValueMapping {
	return dashboard.ValueMapping{ValueMap: &dashboard.ValueMap{
		Type: dashboard.MappingTypeValueToText,
		Options: map[string]dashboard.ValueMappingResult{
			value: {Text: ptr(text), Color: ptr(color)},
		},
	}}
}

// rangeMapping shows a fixed text and color for values in [from, to]; nil is unbounded.
func rangeMapping(from, to *float64, text, color string) dashboard.ValueMapping {
	return dashboard.ValueMapping{RangeMap: &dashboard.RangeMap{
		Type: dashboard.MappingTypeRangeToText,
		Options: dashboard.DashboardRangeMapOptions{
			From:   from,
			To:     to,
			Result: dashboard.ValueMappingResult{Text: ptr(text), Color: ptr(color)},
		},
	}}
}
