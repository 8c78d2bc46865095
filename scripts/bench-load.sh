#!/usr/bin/env bash
# Load figures with the load tool in its own process against a central in
# another, configurations interleaved run by run (docs/BENCHMARKS.md):
#
#   CONFIGS="base:/tmp/base/bin:central:loadtest:,new:bin:central:loadtest:--prebuilt" \
#     AGENCIES=1000 DURATION=10s scripts/bench-load.sh 3
#
# CONFIGS is a comma-separated list of label:bindir:central:loadtest:extra-loadtest-flags[:env]
# (flags separated by spaces inside the field; env, the rest of the entry, colons included, is
# VAR=value words for that configuration's central, after CENTRAL_ENV). Each run gets a fresh
# store; the central is stopped by pid. LOADTEST_FLAGS go to every run (e.g. "--batch 1000
# --in-flight 4" — the default — or "--rate 900000 --warmup 2s"). Prints each run's throughput,
# the central's CPU seconds and the ack latency line, then the median throughput per
# configuration, with the load average before and after.
set -euo pipefail
cd "$(dirname "$0")/.."
PROG=bench-load
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

RUNS=${1:-3}
AGENCIES=${AGENCIES:-1000}
DURATION=${DURATION:-10s}
LOADTEST_FLAGS=${LOADTEST_FLAGS:---batch 1000 --in-flight 4}
[ -n "${CONFIGS:-}" ] || fail "set CONFIGS (see the comment at the top of $0)"
work=$(mktemp -d "${TMPDIR:-/tmp}/loteria-load.XXXXXX")
central_pid=
# shellcheck disable=SC2317 # called by the trap
cleanup() {
  local code=$?
  trap - EXIT INT TERM
  [ -z "$central_pid" ] || { kill -0 "$central_pid" 2>/dev/null && stop_pid "$central_pid" 15; }
  rm -rf "$work"
  exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
pick_port PORT 26999 ""
port=$REPLY
pick_port METRICS_PORT 27999 "" "$port"
mport=$REPLY

IFS=, read -ra cfgs <<<"$CONFIGS"
read -ra central_env <<<"${CENTRAL_ENV:-}"    # VAR=value words for every central
read -ra loadtest_flags <<<"$LOADTEST_FLAGS"
say "$(date -u +%FT%TZ) $RUNS runs of ${#cfgs[@]} configurations, $AGENCIES agencies for $DURATION, interleaved; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq 1 "$RUNS"); do
  for cfg in "${cfgs[@]}"; do
    IFS=: read -r label bin cbin lbin extra cfg_env <<<"$cfg"
    read -ra cfg_env_words <<<"${cfg_env:-}"
    rm -rf "$work/store" && mkdir -p "$work/store"
    env SERVER_HOST=127.0.0.1 SERVER_PORT="$port" CLIENT_COUNT="$AGENCIES" STORE_PATH="$work/store/bets.csv" \
      METRICS_ADDR="127.0.0.1:$mport" LOGGING_LEVEL=WARN "${central_env[@]}" "${cfg_env_words[@]}" "$bin/$cbin" 2>>"$work/central.log" &
    central_pid=$!
    until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
      kill -0 "$central_pid" 2>/dev/null || { tail -n 5 "$work/central.log" >&2; fail "$label: the central exited at start"; }
      sleep 0.01
    done
    case $lbin in /*) ;; *) lbin=$bin/$lbin ;; esac
    read -ra extra_flags <<<"$extra"
    out=$("$lbin" --agencies "$AGENCIES" --duration "$DURATION" --addr "127.0.0.1:$port" --quiet "${loadtest_flags[@]}" "${extra_flags[@]}" 2>&1) || true
    # the central's CPU seconds (user + system) over the run, read before it stops
    cpu=$(cpu_seconds "$central_pid")
    stop_pid "$central_pid" 15
    central_pid=
    tput=$(awk '/^Throughput/ { print $2 }' <<<"$out")
    lat=$(grep '^Ack latency' <<<"$out" || true)
    failed=$(grep -c 'Check.*FAIL' <<<"$out" || true)
    printf '%s\t%s\t%s\t%s\tcpu %ss\t%s\n' "$r" "$label" "${tput:-0}" "$failed" "$cpu" "$lat" | tee -a "$work/runs.tsv"
  done
done
say "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
for cfg in "${cfgs[@]}"; do
  IFS=: read -r label _ <<<"$cfg"
  awk -F'\t' -v l="$label" '$2 == l { print $3 }' "$work/runs.tsv" | sort -n | awk -v l="$label" '{ a[NR] = $1 } END {
    printf "%-24s median %.0f bets/s  (min %.0f, max %.0f, %d runs)\n", l, (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2), a[1], a[NR], NR }'
done
