#!/usr/bin/env bash
# Times the official 5-agency run (agency processes' start → the last one's
# exit, as scripts/bench-official.sh) for several configurations, possibly
# of different builds, INTERLEAVED run by run so that a machine's mood hits
# every configuration alike. For before/after tables and side-by-side
# figures; prints min / median / max per configuration (and the central's
# median CPU seconds), the load average before and after, and keeps every
# run's time and central CPU in a TSV.
#
#   CONFIGS="base:/tmp/base/bin:central:10:64:loteria:plain,new:bin:central:10:64:loteria:plain" \
#     scripts/bench-compare.sh 15
#
# CONFIGS is a comma-separated list of label:bindir:central:maxAmount:inFlight:protocol:transport[:env]
#   bindir     holds the central (named by the next field) and agency to run
#   central    the central binary's name in bindir (e.g. central, or a
#              measurement-only build such as central-nofsync)
#   protocol   loteria or seed (seed with in-flight 1 stands in for the seed's client)
#   transport  plain, or tls (mutual TLS; certificates made once with bin/certs)
#   env        optional VAR=value settings (space-separated) for the central and every agency,
#              e.g. "OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4317 OTEL_TRACES_SAMPLER_ARG=0.1"
# DATA_DIR (default ../shared/datasets/tp0), OUT (the TSV; default a temporary file).
set -euo pipefail
for v in DATA_DIR OUT; do
  case ${!v:-} in "" | /*) ;; *) printf -v "$v" '%s/%s' "$PWD" "${!v}" ;; esac
done
cd "$(dirname "$0")/.."
PROG=bench-compare
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

RUNS=${1:-15}
DATA_DIR=${DATA_DIR:-../shared/datasets/tp0}
[ -n "${CONFIGS:-}" ] || fail "set CONFIGS (see the comment at the top of $0)"
want=$(cat "$DATA_DIR"/agency-{1..5}.csv | grep -c . || true)
work=$(mktemp -d "${TMPDIR:-/tmp}/loteria-compare.XXXXXX")
OUT=${OUT:-$work/runs.tsv}
central_pid=
agency_pids=()
# shellcheck disable=SC2317 # called by the trap
cleanup() {
  local code=$? pid
  trap - EXIT INT TERM
  for pid in "${agency_pids[@]}" $central_pid; do
    kill -0 "$pid" 2>/dev/null && stop_pid "$pid" 10
  done
  case $OUT in "$work"/*) cp "$OUT" "${TMPDIR:-/tmp}/bench-compare-last.tsv" 2>/dev/null || true ;; esac
  rm -rf "$work"
  exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

pick_port PORT 24999 ""
port=$REPLY
pick_port METRICS_PORT 28999 "" "$port"
mport=$REPLY

IFS=, read -ra cfgs <<<"$CONFIGS"
for cfg in "${cfgs[@]}"; do
  IFS=: read -r _ bin _ _ _ _ transport <<<"$cfg"
  if [ "$transport" = tls ] && [ ! -f "$work/certs/ca.pem" ]; then
    [ -x "$bin/certs" ] || fail "$bin/certs not found: the tls transport makes its certificates with it"
    "$bin/certs" --agencies 5 --out "$work/certs" --hosts 127.0.0.1,localhost >/dev/null
  fi
done

one_run() { # label bin central batch inflight proto transport extra-env → seconds, tab, the central's CPU seconds
  local label=$1 bin=$2 cbin=$3 batch=$4 inflight=$5 proto=$6 transport=$7 store start end i cpu
  local -a cenv aenv extra
  read -ra extra <<<"${8:-}"
  store="$work/store/bets.csv"
  rm -rf "$work/store"
  mkdir -p "$work/store"
  cenv=(SERVER_HOST=127.0.0.1 SERVER_PORT="$port" CLIENT_COUNT=5 STORE_PATH="$store" METRICS_ADDR="127.0.0.1:$mport" LOGGING_LEVEL=WARN)
  if [ "$transport" = tls ]; then
    cenv=(SERVER_HOST=127.0.0.1 SERVER_PORT=off TLS_PORT="$port" TLS_CERT="$work/certs/central.pem" TLS_KEY="$work/certs/central-key.pem"
      TLS_CA="$work/certs/ca.pem" CLIENT_COUNT=5 STORE_PATH="$store" METRICS_ADDR="127.0.0.1:$mport" LOGGING_LEVEL=WARN)
  fi
  env "${cenv[@]}" "${extra[@]}" "$bin/$cbin" 2>>"$work/central.log" &
  central_pid=$!
  until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    kill -0 "$central_pid" 2>/dev/null || { tail -n 5 "$work/central.log" >&2; fail "$label: the central exited at start"; }
    sleep 0.01
  done
  agency_pids=()
  start=$(date +%s%N)
  for i in 1 2 3 4 5; do
    aenv=("CLI_ID=$i" CLI_SERVER_ADDRESS="127.0.0.1:$port" CLI_DATA_PATH="$DATA_DIR/agency-$i.csv" CLI_BATCH_MAXAMOUNT="$batch"
      CLI_BATCH_INFLIGHT="$inflight" CLI_PROTOCOL="$proto" CLI_LOG_LEVEL=ERROR METRICS_ADDR=off)
    [ "$transport" = tls ] && aenv+=(CLI_TLS_CERT="$work/certs/agency-$i.pem" CLI_TLS_KEY="$work/certs/agency-$i-key.pem" CLI_TLS_CA="$work/certs/ca.pem")
    env "${aenv[@]}" "${extra[@]}" "$bin/agency" >/dev/null 2>>"$work/agency.log" &
    agency_pids+=($!)
  done
  for i in 1 2 3 4 5; do
    wait "${agency_pids[$((i - 1))]}" || { tail -n 10 "$work/agency.log" >&2; fail "$label: agency $i failed"; }
  done
  end=$(date +%s%N)
  agency_pids=()
  # the central's CPU seconds (user + system) over the run, read before it stops
  cpu=$(cpu_seconds "$central_pid")
  stop_pid "$central_pid" 15
  central_pid=
  case $cbin in *nostore*) ;; *)
    [ "$(wc -l <"$store")" -eq "$want" ] || fail "$label: the store does not hold the $want bets of the files" ;;
  esac
  awk -v s="$start" -v e="$end" -v c="$cpu" 'BEGIN { printf "%.4f\t%s\n", (e - s) / 1e9, c }'
}

say "$(date -u +%FT%TZ) $RUNS runs of ${#cfgs[@]} configurations, interleaved; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq 1 "$RUNS"); do
  for cfg in "${cfgs[@]}"; do
    IFS=: read -r label bin cbin batch inflight proto transport extra <<<"$cfg"
    t=$(one_run "$label" "$bin" "$cbin" "$batch" "$inflight" "$proto" "$transport" "$extra")
    printf '%s\t%s\t%s\n' "$r" "$label" "$t" >>"$OUT"
  done
done
say "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
for cfg in "${cfgs[@]}"; do
  IFS=: read -r label _ <<<"$cfg"
  cpu=$(awk -F'\t' -v l="$label" '$2 == l { print $4 }' "$OUT" | sort -n | awk '{ a[NR] = $1 } END { printf "%.2f", (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2) }')
  awk -F'\t' -v l="$label" '$2 == l { print $3 }' "$OUT" | sort -n | awk -v l="$label" -v c="$cpu" '{ a[NR] = $1 } END {
    printf "%-28s min %.3f s  median %.3f s  max %.3f s  (%d runs)  central CPU median %.2f s\n", l, a[1], (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2), a[NR], NR, c }'
done
