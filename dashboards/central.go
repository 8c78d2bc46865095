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
		Description("The central server: rounds, bets and batches received, latency (with exemplars opening the batch's trace in Jaeger), the barrier and the draw, the bets store, connections, TLS and errors, trace export, Go runtime. Pick a round with the Round variable.").
		Tags([]string{dashTag, "central"}).
		Refresh(refresh).
		Time(timeFrom, timeTo).
		Timezone(common.TimeZoneBrowser).
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		Readonly().
		Link(links()).
		WithVariable(roundVariable()).
		WithRow(row(i, "Overview")).
		WithPanel(single(i, "Bets stored", "Bets acknowledged by the central (written and fsynced), the latest value in the dashboard's range: it stays after a run ends.", unitShort,
			instant("A", `sum(last_over_time(loteria_bets_stored_total[$__range]))`, "bets")).
			Decimals(0)).
		WithPanel(single(i, "Bets per second", "Bets stored per second, all agencies (1m rate), in the selected round.", unitBetsPerSec,
			query("A", `sum(loteria:bets_stored:rate1m)`+inRound, "bets/s"))).
		WithPanel(single(i, "Round", "The open round (loteria_round, a gauge): the latest in the dashboard's range.", unitNone,
			instant("A", `max(last_over_time(loteria_round[$__range]))`, "round")).
			Decimals(0).
			GraphMode(common.BigValueGraphModeNone)).
		WithPanel(single(i, "Rounds drawn", "Draws held in the dashboard's range (one per round).", unitShort,
			instant("A", `sum(increase(loteria_draws_total[$__range]))`, "draws")).
			Decimals(0).
			GraphMode(common.BigValueGraphModeNone)).
		WithPanel(single(i, "Central", "Whether Prometheus can scrape the central (up).", unitNone,
			query("A", `up{job="central"}`, "up")).
			GraphMode(common.BigValueGraphModeNone).
			ColorMode(common.BigValueColorModeBackground).
			Mappings([]dashboard.ValueMapping{
				textMapping("0", "down", "red"),
				textMapping("1", "up", "green"),
			})).
		WithPanel(single(i, "Store", "Whether the bets store failed in the dashboard's range (loteria_store_failed): a failed store refuses batches until the central restarts.", unitNone,
			instant("A", `max(max_over_time(loteria_store_failed[$__range]))`, "store failed")).
			GraphMode(common.BigValueGraphModeNone).
			ColorMode(common.BigValueColorModeBackground).
			Mappings([]dashboard.ValueMapping{
				textMapping("0", "ok", "green"),
				textMapping("1", "FAILED", "red"),
			})).
		WithRow(row(i, "Rounds")).
		WithPanel(graph(i, "Open round and its bets", "The open round (left) and the bets stored in it so far (right): the bets climb while sales are open and start again at each new round.", unitShort, thirdWidth,
			query("A", `max(loteria_round)`, "round"),
			query("B", `max(loteria_round_bets)`, "bets in the round")).
			Decimals(0).
			OverrideByQuery("B", []dashboard.DynamicConfigValue{
				{Id: "custom.axisPlacement", Value: "right"},
			})).
		WithPanel(graph(i, "Agencies: expected, finished, waiting, connected", "The barrier admits `expected` agencies (the stack's and the load profile's); `finished` sent END in the open round; `waiting` wait for their winners now; a round closes when all finished or at its cut-off.", unitShort, thirdWidth,
			query("A", `max(loteria_agencies_expected)`, "expected"),
			query("B", `max(loteria_agencies_finished)`, "finished"),
			query("C", `max(loteria_agencies_waiting)`, "waiting"),
			query("D", `sum(loteria_agencies_connected)`, "connected")).
			Decimals(0)).
		WithPanel(graph(i, "Round duration", "Mean time from a round's opening to its draw over the last 2 minutes, and draws per minute (right).", unitSeconds, thirdWidth,
			query("A", `sum(increase(loteria_round_duration_seconds_sum[2m])) / sum(increase(loteria_round_duration_seconds_count[2m]))`, "mean open to drawn"),
			query("B", `sum(increase(loteria_draws_total[1m]))`, "draws / min")).
			OverrideByQuery("B", []dashboard.DynamicConfigValue{
				{Id: "unit", Value: unitShort},
				{Id: "custom.axisPlacement", Value: "right"},
			})).
		WithRow(row(i, "Bets and batches")).
		WithPanel(graph(i, "Bets stored per second by agency", "Bets acknowledged per second, per agency (recording rule loteria:bets_stored:rate1m), in the selected round.", unitBetsPerSec, halfWidth,
			query("A", `loteria:bets_stored:rate1m`+inRound, "agency {{agency}}")).
			Stacking(common.NewStackingConfigBuilder().Mode(common.StackingModeNormal))).
		WithPanel(graph(i, "Batches per second by result", "Batches received per second by outcome (success, malformed, invalid_bet, wrong_agency, after_draw, store_failed, shutting_down), in the selected round.", unitPerSec, halfWidth,
			query("A", `loteria:batches_received:rate1m`+inRound, "{{result}}"))).
		WithPanel(graph(i, "Batch latency", "Frame read to ack written, p50/p95/p99. The p99 query fetches exemplars: click a dot to open its batch's trace in the Jaeger UI.", unitSeconds, halfWidth,
			query("A", `histogram_quantile(0.5, sum by (le) (rate(loteria_batch_duration_seconds_bucket[$__rate_interval])))`+inRound, "p50").Exemplar(false),
			query("B", `histogram_quantile(0.95, sum by (le) (rate(loteria_batch_duration_seconds_bucket[$__rate_interval])))`+inRound, "p95").Exemplar(false),
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
		WithPanel(graph(i, "Duplicate bets", "Resent bets the central acknowledged without storing them again (a reconnecting agency resending what was already durable): exactly-once at work.", unitBetsPerSec, halfWidth,
			query("A", `sum(rate(loteria_bets_duplicate_total[$__rate_interval]))`, "duplicates/s"))).
		WithPanel(graph(i, "Batch error ratio", "Share of batches not stored successfully (5m window, recording rule loteria:batch_error_ratio:rate5m).", unitPercent, halfWidth,
			query("A", `loteria:batch_error_ratio:rate5m`, "error ratio")).
			Min(0)).
		WithRow(row(i, "Barrier and draw")).
		WithPanel(graph(i, "Barrier wait", "Time an agency waits at the barrier (END to winners sent), p50 and p99 over the last 2 minutes, and first END to draw done.", unitSeconds, halfWidth,
			query("A", `histogram_quantile(0.5, sum by (le) (increase(loteria_barrier_wait_seconds_bucket[2m])))`, "wait p50"),
			query("B", `histogram_quantile(0.99, sum by (le) (increase(loteria_barrier_wait_seconds_bucket[2m])))`, "wait p99"),
			query("C", `max(loteria_barrier_first_end_to_draw_seconds)`, "first END to draw"))).
		WithPanel(bars(i, "Winners per agency (central)", "Winners of each agency in the last round drawn, as the central computed them (latest in the dashboard's range).", unitShort, quarterWidth,
			instant("A", `sum by (agency) (last_over_time(loteria_winners[$__range]))`, "agency {{agency}}")).
			Decimals(0)).
		WithPanel(single(i, "Draw duration", "How long the last draw took.", unitSeconds,
			instant("A", `max(last_over_time(loteria_draw_duration_seconds[$__range]))`, "draw")).
			GraphMode(common.BigValueGraphModeNone).
			Span(eighthWidth).
			Height(graphHeight)).
		WithPanel(single(i, "Total winners", "Winners of all agencies in the last round drawn.", unitShort,
			instant("A", `sum(last_over_time(loteria_winners[$__range]))`, "winners")).
			Decimals(0).
			GraphMode(common.BigValueGraphModeNone).
			Span(eighthWidth).
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
		WithRow(row(i, "Connections, TLS and errors")).
		WithPanel(graph(i, "Protocol errors by reason", "Framing errors per second (bad_header, frame_too_large, truncated_frame); each ends its connection.", unitPerSec, thirdWidth,
			query("A", `sum by (reason) (rate(loteria_protocol_errors_total[$__rate_interval]))`, "{{reason}}"))).
		WithPanel(graph(i, "TLS handshake errors by reason", "Failed TLS handshakes per second on the TLS port: expired or foreign certificates, a plaintext client, a timeout (docs/TLS.md).", unitPerSec, thirdWidth,
			query("A", `sum by (reason) (rate(loteria_tls_handshake_errors_total[$__rate_interval]))`, "{{reason}}"))).
		WithPanel(graph(i, "Connections", "Connections accepted, rejected by the cap, and closed by reason, per second.", unitPerSec, thirdWidth,
			query("A", `sum(rate(loteria_connections_accepted_total[$__rate_interval]))`, "accepted"),
			query("B", `sum by (reason) (rate(loteria_connections_rejected_total[$__rate_interval]))`, "rejected ({{reason}})"),
			query("C", `sum by (reason) (rate(loteria_connections_closed_total[$__rate_interval]))`, "closed ({{reason}})"))).
		WithRow(row(i, "Traces")).
		WithPanel(graph(i, "Spans dropped", "Spans a process's batch span processor dropped because its queue was full (loteria_trace_spans_dropped_total): 0 means every sampled span was exported.", unitPerSec, fullWidth,
			query("A", `sum by (job) (rate(loteria_trace_spans_dropped_total[$__rate_interval]))`, "{{job}}"))).
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
