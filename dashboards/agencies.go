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
		Description("The agency clients: the round each is in, progress through its bets, throughput, ack round trip (with exemplars opening the batch's trace in Jaeger), errors and retries, winners; and the load profile's load tool. Pick agencies with the Agency variable, a round with the Round variable.").
		Tags([]string{dashTag, "agencies"}).
		Refresh(refresh).
		Time(timeFrom, timeTo).
		Timezone(common.TimeZoneBrowser).
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		Readonly().
		Link(links()).
		WithVariable(agencyVariable()).
		WithVariable(roundVariable()).
		WithRow(row(i, "Progress")).
		WithPanel(single(i, "Agencies done", "Agencies that have received the winners of their last round (a looping agency never is), out of the agencies selected, in the dashboard's range.", unitShort,
			instant("A", `sum(last_over_time(loteria_agency_done{`+sel+`}[$__range]))`, "done"),
			instant("B", `count(last_over_time(loteria_agency_bets_in_file{`+sel+`}[$__range]))`, "agencies")).
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
		WithPanel(bars(i, "Progress per agency", "Bets acknowledged / bets to send (recording rule loteria:agency_progress:ratio), the latest in the dashboard's range: it stays after a run ends.", unitPercent, halfWidth,
			instant("A", `last_over_time(loteria:agency_progress:ratio{`+sel+`}[$__range])`, "agency {{agency}}")).
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
		WithPanel(graph(i, "Round per agency", "The round each agency is sending in (loteria_agency_round): they move on together once a round is drawn.", unitShort, fullWidth,
			query("A", `max by (agency) (loteria_agency_round{`+sel+`})`, "agency {{agency}}")).
			Decimals(0)).
		WithRow(row(i, "Throughput and latency")).
		WithPanel(graph(i, "Bets acknowledged per second", "Per agency (recording rule loteria:agency_bets_acked:rate1m), in the selected round.", unitBetsPerSec, halfWidth,
			query("A", `loteria:agency_bets_acked:rate1m{`+sel+`}`+inRound, "agency {{agency}}")).
			Stacking(common.NewStackingConfigBuilder().Mode(common.StackingModeNormal))).
		WithPanel(graph(i, "Ack round trip", "Batch written to ack read. p99 per agency fetches exemplars: click a dot to open its batch's trace in the Jaeger UI. p50 from the recording rule.", unitSeconds, halfWidth,
			query("A", `histogram_quantile(0.99, sum by (agency, le) (rate(loteria_agency_ack_duration_seconds_bucket{`+sel+`}[$__rate_interval])))`, "p99 {{agency}}").Exemplar(true),
			query("B", `loteria:agency_ack_duration_seconds:quantile1m{quantile="0.5", `+sel+`}`, "p50 {{agency}}").Exemplar(false))).
		WithPanel(graph(i, "Batches sent per second", "Per agency, in the selected round.", unitPerSec, halfWidth,
			query("A", `sum by (agency) (rate(loteria_agency_batches_sent_total{`+sel+`}[$__rate_interval]))`+inRound, "agency {{agency}}"))).
		WithPanel(graph(i, "Bytes sent per second", "Bytes written to the socket, per agency.", unitBytesRate, halfWidth,
			query("A", `sum by (agency) (rate(loteria_agency_bytes_sent_total{`+sel+`}[$__rate_interval]))`, "agency {{agency}}"))).
		WithRow(row(i, "Errors and retries")).
		WithPanel(graph(i, "Errors per second", "By agency and reason (error_ack, connection, timeout, data).", unitPerSec, halfWidth,
			query("A", `loteria:agency_errors:rate1m{`+sel+`}`, "{{agency}} {{reason}}"))).
		WithPanel(graph(i, "Retries per second", "Reconnections and resends, per agency.", unitPerSec, thirdWidth,
			query("A", `sum by (agency) (rate(loteria_agency_retries_total{`+sel+`}[$__rate_interval]))`, "agency {{agency}}"))).
		WithPanel(single(i, "Errors", "Errors in the dashboard's range, selected agencies.", unitShort,
			instant("A", `sum(increase(loteria_agency_errors_total{`+sel+`}[$__range]))`, "errors")).
			Decimals(0).
			Height(graphHeight).
			Thresholds(thresholds(step(nil, "green"), step(ptr(1.0), "red")))).
		WithRow(row(i, "Winners")).
		WithPanel(bars(i, "Winners received per agency", "Winners each agency received from the central for its last round, the latest in the dashboard's range.", unitShort, halfWidth,
			instant("A", `sum by (agency) (last_over_time(loteria_agency_winners{`+sel+`}[$__range]))`, "agency {{agency}}")).
			Decimals(0)).
		WithPanel(bars(i, "Winners per agency (central)", "Winners of each agency in the last round drawn, as the central computed them; should match the column on the left once every agency has its winners.", unitShort, halfWidth,
			instant("A", `sum by (agency) (last_over_time(loteria_winners{`+sel+`}[$__range]))`, "agency {{agency}}")).
			Decimals(0)).
		WithRow(row(i, "Load profile (load tool)")).
		WithPanel(graph(i, "Load agencies", "The load tool's simulated agencies by state (make up PROFILE=load); their ids follow the stack's agencies. One process drives them all: the Agency variable does not narrow this row.", unitShort, thirdWidth,
			query("A", `sum by (state) (loteria_loadtest_agencies{job="loadtest"})`, "{{state}}")).
			Decimals(0)).
		WithPanel(graph(i, "Load: bets acknowledged per second", "Bets the load tool's agencies had acknowledged, per second.", unitBetsPerSec, thirdWidth,
			query("A", `sum(rate(loteria_loadtest_bets_acked_total{job="loadtest"}[$__rate_interval]))`, "bets/s"))).
		WithPanel(graph(i, "Load: ack round trip", "p50 and p99 of the load tool's ack round trip.", unitSeconds, thirdWidth,
			query("A", `histogram_quantile(0.5, sum by (le) (rate(loteria_loadtest_ack_duration_seconds_bucket{job="loadtest"}[$__rate_interval])))`, "p50"),
			query("B", `histogram_quantile(0.99, sum by (le) (rate(loteria_loadtest_ack_duration_seconds_bucket{job="loadtest"}[$__rate_interval])))`, "p99")))
}
