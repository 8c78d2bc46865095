package dashboards

import (
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// Dashboard-wide settings shared by both dashboards.
const (
	refresh  = "5s"
	timeFrom = "now-15m"
	timeTo   = "now"
	dashTag  = "loteria"
)

func links() *dashboard.DashboardLinkBuilder {
	return dashboard.NewDashboardLinkBuilder("Lotería").
		Type(dashboard.DashboardLinkTypeDashboards).
		Tags([]string{dashTag}).
		AsDropdown(false).
		IncludeVars(false).
		KeepTime(true).
		TargetBlank(false)
}

// central is the "Lotería central" dashboard: what the central server does.
func central() *dashboard.DashboardBuilder {
	i := &ids{}
	return dashboard.NewDashboardBuilder("Lotería central").
		Uid(CentralUID).
		Description("The central server: bets and batches received, latency (with exemplars linking to traces), the barrier and the draw, the bets store, connections and errors, Go runtime.").
		Tags([]string{dashTag, "central"}).
		Refresh(refresh).
		Time(timeFrom, timeTo).
		Timezone(common.TimeZoneBrowser).
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		Readonly().
		Link(links()).
		WithRow(row(i, "Overview")).
		WithPanel(single(i, "Bets stored", "Bets acknowledged by the central (written and fsynced).", unitShort,
			query("A", `sum(loteria_bets_stored_total)`, "bets")).
			Decimals(0)).
		WithPanel(single(i, "Bets per second", "Bets stored per second, all agencies (1m rate).", unitBetsPerSec,
			query("A", `sum(loteria:bets_stored:rate1m)`, "bets/s"))).
		WithPanel(single(i, "Connected agencies", "Agency connections open now.", unitShort,
			query("A", `sum(loteria_agencies_connected)`, "connected")).
			Decimals(0)).
		WithPanel(single(i, "Barrier", "Agencies that sent END / agencies the barrier waits for (CLIENT_COUNT).", unitShort,
			query("A", `max(loteria_agencies_finished)`, "finished"),
			query("B", `max(loteria_agencies_expected)`, "expected")).
			Decimals(0).
			TextMode(common.BigValueTextModeValueAndName).
			GraphMode(common.BigValueGraphModeNone)).
		WithPanel(single(i, "Draw", "Whether the draw has been held (it happens once every agency has sent END).", unitNone,
			query("A", `max(loteria_draws_total)`, "draw")).
			GraphMode(common.BigValueGraphModeNone).
			ColorMode(common.BigValueColorModeBackground).
			Mappings([]dashboard.ValueMapping{
				textMapping("0", "waiting", "orange"),
				rangeMapping(ptr(1.0), nil, "done", "green"),
			})).
		WithPanel(single(i, "Central", "Whether Prometheus can scrape the central (up).", unitNone,
			query("A", `up{job="central"}`, "up")).
			GraphMode(common.BigValueGraphModeNone).
			ColorMode(common.BigValueColorModeBackground).
			Mappings([]dashboard.ValueMapping{
				textMapping("0", "down", "red"),
				textMapping("1", "up", "green"),
			})).
		WithRow(row(i, "Bets and batches")).
		WithPanel(graph(i, "Bets stored per second by agency", "Bets acknowledged per second, per agency (recording rule loteria:bets_stored:rate1m).", unitBetsPerSec, halfWidth,
			query("A", `loteria:bets_stored:rate1m`, "agency {{agency}}")).
			Stacking(common.NewStackingConfigBuilder().Mode(common.StackingModeNormal))).
		WithPanel(graph(i, "Batches per second by result", "Batches received per second by outcome (success, malformed, invalid_bet, wrong_agency, after_draw, store_failed, shutting_down).", unitPerSec, halfWidth,
			query("A", `loteria:batches_received:rate1m`, "{{result}}"))).
		WithPanel(graph(i, "Batch latency", "Frame read to ack written, p50/p95/p99. The p99 query fetches exemplars: click a point to open its trace in Jaeger.", unitSeconds, halfWidth,
			query("A", `histogram_quantile(0.5, sum by (le) (rate(loteria_batch_duration_seconds_bucket[$__rate_interval])))`, "p50").Exemplar(false),
			query("B", `histogram_quantile(0.95, sum by (le) (rate(loteria_batch_duration_seconds_bucket[$__rate_interval])))`, "p95").Exemplar(false),
			query("C", `histogram_quantile(0.99, sum by (le) (rate(loteria_batch_duration_seconds_bucket[$__rate_interval])))`, "p99").Exemplar(true))).
		WithPanel(graph(i, "Batch size", "Bets per batch (p50, p95, mean) and mean frame payload bytes (right axis).", unitShort, halfWidth,
			query("A", `histogram_quantile(0.5, sum by (le) (rate(loteria_batch_size_bets_bucket[$__rate_interval])))`, "p50 bets"),
			query("B", `histogram_quantile(0.95, sum by (le) (rate(loteria_batch_size_bets_bucket[$__rate_interval])))`, "p95 bets"),
			query("C", `loteria:batch_size_bets:avg1m`, "mean bets"),
			query("D", `sum(rate(loteria_batch_size_bytes_sum[$__rate_interval])) / sum(rate(loteria_batch_size_bytes_count[$__rate_interval]))`, "mean bytes")).
			OverrideByQuery("D", []dashboard.DynamicConfigValue{
				{Id: "unit", Value: unitBytes},
				{Id: "custom.axisPlacement", Value: "right"},
			})).
		WithRow(row(i, "Barrier and draw")).
		WithPanel(graph(i, "Agencies: expected, finished, connected", "The barrier waits for `expected` agencies to send END; the draw happens when finished = expected.", unitShort, thirdWidth,
			query("A", `max(loteria_agencies_expected)`, "expected"),
			query("B", `max(loteria_agencies_finished)`, "finished"),
			query("C", `sum(loteria_agencies_connected)`, "connected")).
			Decimals(0)).
		WithPanel(dial(i, "Barrier progress", "Share of the expected agencies that have sent END.", unitPercent, quarterWidth,
			query("A", `max(loteria_agencies_finished) / max(loteria_agencies_expected)`, "finished")).
			Min(0).
			Max(1).
			Thresholds(thresholds(step(nil, "orange"), step(ptr(1.0), "green")))).
		WithPanel(graph(i, "Barrier wait", "Time an agency waits at the barrier (END to winners sent): p50 and p99 over every wait so far, and first END to draw done.", unitSeconds, 10,
			query("A", `histogram_quantile(0.5, sum by (le) (loteria_barrier_wait_seconds_bucket))`, "wait p50"),
			query("B", `histogram_quantile(0.99, sum by (le) (loteria_barrier_wait_seconds_bucket))`, "wait p99"),
			query("C", `max(loteria_barrier_first_end_to_draw_seconds)`, "first END to draw"))).
		WithPanel(bars(i, "Winners per agency (central)", "Winners of each agency after the draw, as the central computed them.", unitShort, halfWidth,
			instant("A", `sum by (agency) (loteria_winners)`, "agency {{agency}}")).
			Decimals(0)).
		WithPanel(single(i, "Draw duration", "How long the draw took (one pass over the bets store).", unitSeconds,
			query("A", `max(loteria_draw_duration_seconds)`, "draw")).
			GraphMode(common.BigValueGraphModeNone).
			Span(quarterWidth).
			Height(graphHeight)).
		WithPanel(single(i, "Total winners", "Winners of all agencies.", unitShort,
			query("A", `sum(loteria_winners)`, "winners")).
			Decimals(0).
			GraphMode(common.BigValueGraphModeNone).
			Span(quarterWidth).
			Height(graphHeight)).
		WithRow(row(i, "Storage")).
		WithPanel(graph(i, "fsync latency", "Duration of one group commit's fsync, p50 and p99 (recording rule).", unitSeconds, thirdWidth,
			query("A", `loteria:store_fsync_duration_seconds:quantile1m`, "p{{quantile}}"))).
		WithPanel(graph(i, "Group commit size", "Batches made durable by one group commit: p50, p99 and mean. Above 1 means fsyncs are shared.", unitShort, thirdWidth,
			query("A", `loteria:store_group_commit_batches:quantile1m`, "p{{quantile}}"),
			query("B", `loteria:store_group_commit_batches:avg1m`, "mean"))).
		WithPanel(graph(i, "Bets file", "Bytes appended per second and committed size of bets.csv (right axis).", unitBytesRate, thirdWidth,
			query("A", `sum(rate(loteria_store_bytes_written_total[$__rate_interval]))`, "written"),
			query("B", `max(loteria_store_size_bytes)`, "size")).
			OverrideByQuery("B", []dashboard.DynamicConfigValue{
				{Id: "unit", Value: unitBytes},
				{Id: "custom.axisPlacement", Value: "right"},
			})).
		WithRow(row(i, "Connections and errors")).
		WithPanel(graph(i, "Protocol errors by reason", "Framing errors per second (bad_header, frame_too_large, truncated_frame); each ends its connection.", unitPerSec, thirdWidth,
			query("A", `sum by (reason) (rate(loteria_protocol_errors_total[$__rate_interval]))`, "{{reason}}"))).
		WithPanel(graph(i, "Batch error ratio", "Share of batches not stored successfully (5m window, recording rule loteria:batch_error_ratio:rate5m).", unitPercent, thirdWidth,
			query("A", `loteria:batch_error_ratio:rate5m`, "error ratio")).
			Min(0)).
		WithPanel(graph(i, "Connections", "Connections accepted, rejected by the cap, and closed by reason, per second.", unitPerSec, thirdWidth,
			query("A", `sum(rate(loteria_connections_accepted_total[$__rate_interval]))`, "accepted"),
			query("B", `sum by (reason) (rate(loteria_connections_rejected_total[$__rate_interval]))`, "rejected ({{reason}})"),
			query("C", `sum by (reason) (rate(loteria_connections_closed_total[$__rate_interval]))`, "closed ({{reason}})"))).
		WithRow(row(i, "Go runtime (central)")).
		WithPanel(graph(i, "Goroutines and threads", "Goroutines and OS threads of the central.", unitShort, thirdWidth,
			query("A", `go_goroutines{job="central"}`, "goroutines"),
			query("B", `go_threads{job="central"}`, "threads"))).
		WithPanel(graph(i, "Memory", "Heap in use, heap allocated and resident memory of the central.", unitBytes, thirdWidth,
			query("A", `go_memstats_heap_inuse_bytes{job="central"}`, "heap in use"),
			query("B", `go_memstats_heap_alloc_bytes{job="central"}`, "heap alloc"),
			query("C", `process_resident_memory_bytes{job="central"}`, "resident"))).
		WithPanel(graph(i, "Garbage collection", "GC cycles per second and the longest GC pause in the recent window.", unitPerSec, thirdWidth,
			query("A", `rate(go_gc_duration_seconds_count{job="central"}[$__rate_interval])`, "GC/s"),
			query("B", `go_gc_duration_seconds{job="central", quantile=~"1|1.0"}`, "max pause")).
			OverrideByQuery("B", []dashboard.DynamicConfigValue{
				{Id: "unit", Value: unitSeconds},
				{Id: "custom.axisPlacement", Value: "right"},
			}))
}
