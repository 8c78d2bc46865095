package dashboards

import (
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// agencyVariable lets the viewer pick agencies; "All" matches every agency.
func agencyVariable() *dashboard.QueryVariableBuilder {
	return dashboard.NewQueryVariableBuilder(AgencyVariable).
		Label("Agency").
		Description("Agencies to show (the agency label, 1..N).").
		Datasource(promDatasource()).
		Query(dashboard.StringOrMap{String: ptr("label_values(loteria_agency_bets_in_file, agency)")}).
		Definition("label_values(loteria_agency_bets_in_file, agency)").
		Multi(true).
		IncludeAll(true).
		AllValue(".+").
		Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
		Sort(dashboard.VariableSortNumericalAsc)
}

// sel is the agency matcher every agencies-dashboard query uses.
const sel = `agency=~"$agency"`

// agencies is the "Lotería agencies" dashboard: what each agency client does.
func agencies() *dashboard.DashboardBuilder {
	i := &ids{}
	return dashboard.NewDashboardBuilder("Lotería agencies").
		Uid(AgenciesUID).
		Description("The agency clients: progress through their bets file, throughput, ack round trip (with exemplars linking to traces), errors and retries, winners. Pick agencies with the Agency variable.").
		Tags([]string{dashTag, "agencies"}).
		Refresh(refresh).
		Time(timeFrom, timeTo).
		Timezone(common.TimeZoneBrowser).
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		Readonly().
		Link(links()).
		WithVariable(agencyVariable()).
		WithRow(row(i, "Progress")).
		WithPanel(single(i, "Agencies done", "Agencies that have received their winners, out of the agencies selected.", unitShort,
			query("A", `sum(loteria_agency_done{`+sel+`})`, "done"),
			query("B", `count(loteria_agency_bets_in_file{`+sel+`})`, "agencies")).
			Decimals(0).
			Height(graphHeight).
			TextMode(common.BigValueTextModeValueAndName).
			GraphMode(common.BigValueGraphModeNone)).
		WithPanel(single(i, "Agencies up", "Agency metrics endpoints Prometheus can scrape now (an agency exits once done, after CLI_LINGER).", unitShort,
			query("A", `sum(up{job="agency", `+sel+`})`, "up")).
			Decimals(0).
			Height(graphHeight).
			GraphMode(common.BigValueGraphModeNone)).
		WithPanel(dial(i, "Overall progress", "Bets acknowledged by the central / bets in the data files, selected agencies.", unitPercent, statWidth,
			query("A", `sum(loteria_agency_bets_acked_total{`+sel+`}) / sum(loteria_agency_bets_in_file{`+sel+`})`, "acked")).
			Height(graphHeight).
			Min(0).
			Max(1).
			Thresholds(thresholds(step(nil, "blue"), step(ptr(1.0), "green")))).
		WithPanel(bars(i, "Progress per agency", "Bets acknowledged / bets in the agency's data file (recording rule loteria:agency_progress:ratio).", unitPercent, halfWidth,
			instant("A", `loteria:agency_progress:ratio{`+sel+`}`, "agency {{agency}}")).
			Max(1).
			Thresholds(thresholds(step(nil, "blue"), step(ptr(1.0), "green")))).
		WithPanel(graph(i, "Bets sent and acknowledged", "Per agency: bets sent, bets acknowledged, and the total in its data file (dashed).", unitShort, fullWidth,
			query("A", `sum by (agency) (loteria_agency_bets_sent_total{`+sel+`})`, "sent {{agency}}"),
			query("B", `sum by (agency) (loteria_agency_bets_acked_total{`+sel+`})`, "acked {{agency}}"),
			query("C", `sum by (agency) (loteria_agency_bets_in_file{`+sel+`})`, "total {{agency}}")).
			Decimals(0).
			OverrideByQuery("C", []dashboard.DynamicConfigValue{
				{Id: "custom.lineStyle", Value: map[string]any{"fill": "dash", "dash": []int{10, 10}}},
				{Id: "custom.fillOpacity", Value: 0},
			})).
		WithRow(row(i, "Throughput and latency")).
		WithPanel(graph(i, "Bets acknowledged per second", "Per agency (recording rule loteria:agency_bets_acked:rate1m).", unitBetsPerSec, halfWidth,
			query("A", `loteria:agency_bets_acked:rate1m{`+sel+`}`, "agency {{agency}}")).
			Stacking(common.NewStackingConfigBuilder().Mode(common.StackingModeNormal))).
		WithPanel(graph(i, "Ack round trip", "Batch written to ack read. p99 per agency fetches exemplars: click a point to open its trace in Jaeger. p50 from the recording rule.", unitSeconds, halfWidth,
			query("A", `histogram_quantile(0.99, sum by (agency, le) (rate(loteria_agency_ack_duration_seconds_bucket{`+sel+`}[$__rate_interval])))`, "p99 {{agency}}").Exemplar(true),
			query("B", `loteria:agency_ack_duration_seconds:quantile1m{quantile="0.5", `+sel+`}`, "p50 {{agency}}").Exemplar(false))).
		WithPanel(graph(i, "Batches sent per second", "Per agency.", unitPerSec, halfWidth,
			query("A", `sum by (agency) (rate(loteria_agency_batches_sent_total{`+sel+`}[$__rate_interval]))`, "agency {{agency}}"))).
		WithPanel(graph(i, "Bytes sent per second", "Bytes written to the socket, per agency.", unitBytesRate, halfWidth,
			query("A", `sum by (agency) (rate(loteria_agency_bytes_sent_total{`+sel+`}[$__rate_interval]))`, "agency {{agency}}"))).
		WithRow(row(i, "Errors and retries")).
		WithPanel(graph(i, "Errors per second", "By agency and reason (error_ack, connection, timeout, data).", unitPerSec, halfWidth,
			query("A", `loteria:agency_errors:rate1m{`+sel+`}`, "{{agency}} {{reason}}"))).
		WithPanel(graph(i, "Retries per second", "Reconnections and resends, per agency.", unitPerSec, thirdWidth,
			query("A", `sum by (agency) (rate(loteria_agency_retries_total{`+sel+`}[$__rate_interval]))`, "agency {{agency}}"))).
		WithPanel(single(i, "Errors", "Errors so far, selected agencies.", unitShort,
			query("A", `sum(loteria_agency_errors_total{`+sel+`})`, "errors")).
			Decimals(0).
			Height(graphHeight).
			Thresholds(thresholds(step(nil, "green"), step(ptr(1.0), "red")))).
		WithRow(row(i, "Winners")).
		WithPanel(bars(i, "Winners received per agency", "Winners each agency received from the central.", unitShort, halfWidth,
			instant("A", `sum by (agency) (loteria_agency_winners{`+sel+`})`, "agency {{agency}}")).
			Decimals(0)).
		WithPanel(bars(i, "Winners per agency (central)", "Winners of each agency as the central computed them; should match the column on the left.", unitShort, halfWidth,
			instant("A", `sum by (agency) (loteria_winners{`+sel+`})`, "agency {{agency}}")).
			Decimals(0))
}
