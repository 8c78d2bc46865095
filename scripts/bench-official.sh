#!/usr/bin/env bash
# Times the official 5-agency run as the seed's figures were measured: from
# the agencies' start to the last winners message, 5 agency processes and
# one central process on loopback, durable acks (fsync) on.
#
#   scripts/bench-official.sh [runs]                 # 10 runs of each configuration
#   CONFIGS="10 64 loteria,10000 64 loteria" scripts/bench-official.sh 30
#   NOFSYNC=1 scripts/bench-official.sh 10           # what durability costs (measurement only)
#
# Settings (environment variables):
#   DATA_DIR=../shared/datasets/tp0   agency-1.csv .. agency-5.csv
#   CONFIGS    comma-separated "maxAmount inFlight protocol" triples; "10 1 seed"
#              is the seed's stop-and-wait client, 10000 means full 8 KiB frames
#   NOFSYNC=1  time a central built here with -tags loteria_nofsync, whose store
#              never fsyncs: built into a temporary directory, never into bin/,
#              and removed at the end (an acknowledged bet would not survive a
#              power cut; it exists only to price durability)
#   PORT, METRICS_PORT   the central's ports (default: free ones)
#   BIN=dir    prebuilt central and agency (default: make build, bin/)
#   CENTRAL_ENV, AGENCY_ENV   extra VAR=value settings for one side
#
# Each run has a fresh store in a temporary directory, removed at the end;
# the script checks that it holds every bet of the files. Prints one line
# per configuration: min / median / max wall time over the runs.
set -euo pipefail
for v in DATA_DIR BIN; do
  case ${!v:-} in "" | /*) ;; *) printf -v "$v" '%s/%s' "$PWD" "${!v}" ;; esac
done
cd "$(dirname "$0")/.."
PROG=bench
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

RUNS=${1:-10}
DATA_DIR=${DATA_DIR:-../shared/datasets/tp0}
for i in 1 2 3 4 5; do
  [ -f "$DATA_DIR/agency-$i.csv" ] || fail "$DATA_DIR/agency-$i.csv not found (set DATA_DIR to the directory of agency-1.csv .. agency-5.csv)"
done
want=$(cat "$DATA_DIR"/agency-{1..5}.csv | grep -c .)

central_pid=
agency_pids=()
work=
# shellcheck disable=SC2317 # called by the trap
cleanup() {
  local code=$? pid
  trap - EXIT INT TERM
  for pid in "${agency_pids[@]}" $central_pid; do
    kill -0 "$pid" 2>/dev/null && stop_pid "$pid" 10
  done
  [ -z "$work" ] || rm -rf "$work"
  exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

pick_port PORT 23999 "${PORT:-}"
port=$REPLY
pick_port METRICS_PORT 29999 "${METRICS_PORT:-}" "$port"
mport=$REPLY

work=$(mktemp -d "${TMPDIR:-/tmp}/loteria-bench.XXXXXX")
if [ -z "${BIN:-}" ]; then
  make -s build
  BIN=bin
fi
central=$BIN/central
if [ "${NOFSYNC:-}" = 1 ]; then
  say "NOFSYNC=1: building a central whose store never fsyncs (measurement only) into $work/nofsync"
  CGO_ENABLED=0 go build -trimpath -tags loteria_nofsync -o "$work/nofsync/central" ./services/cmd/central
  central=$work/nofsync/central
fi
say "stores: a fresh one per run under $work (removed at the end)"

one_run() { # run batch inflight protocol → prints seconds
  local n=$1 batch=$2 inflight=$3 proto=$4 store start end i
  store="$work/run-$n/bets.csv"
  mkdir -p "$work/run-$n"
  run_with "$central" CENTRAL_ENV SERVER_HOST=127.0.0.1 SERVER_PORT="$port" CLIENT_COUNT=5 STORE_PATH="$store" \
    METRICS_ADDR="127.0.0.1:$mport" LOGGING_LEVEL=WARN 2>"$work/central.log" &
  central_pid=$!
  if ! wait_own_central "$central_pid" "$port" "$mport" "$BIN/central" 30; then
    report_central "$central_pid" "$work/central.log" "$WHY"
    exit 1
  fi
  agency_pids=()
  start=$(date +%s%N)
  for i in 1 2 3 4 5; do
    run_with "$BIN/agency" AGENCY_ENV CLI_ID=$i CLI_SERVER_ADDRESS="127.0.0.1:$port" \
      CLI_DATA_PATH="$DATA_DIR/agency-$i.csv" CLI_BATCH_MAXAMOUNT="$batch" CLI_BATCH_INFLIGHT="$inflight" \
      CLI_PROTOCOL="$proto" CLI_LOG_LEVEL=ERROR METRICS_ADDR=off >/dev/null 2>>"$work/agency.log" &
    agency_pids+=($!)
  done
  for i in 1 2 3 4 5; do
    wait "${agency_pids[$((i - 1))]}" || { echo "bench: agency $i failed:" >&2; tail -n 10 "$work/agency.log" >&2; exit 1; }
  done
  end=$(date +%s%N)
  agency_pids=()
  stop_pid "$central_pid" 15
  central_pid=
  [ "$STATUS" -eq 0 ] || { echo "bench: the central exited with status $STATUS when stopped:" >&2; tail -n 15 "$work/central.log" >&2; exit 1; }
  local got
  got=$(wc -l <"$store")
  [ "$got" -eq "$want" ] || { echo "bench: the store holds $got bets, the files $want" >&2; exit 1; }
  rm -rf "$work/run-$n"
  awk -v s="$start" -v e="$end" 'BEGIN { printf "%.4f\n", (e - s) / 1e9 }'
}

stats() { sort -n | awk '{ a[NR] = $1 } END { printf "min %.3f s  median %.3f s  max %.3f s  (%d runs)", a[1], (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2), a[NR], NR }'; }

IFS=, read -ra cfgs <<<"${CONFIGS:-10 1 seed,10 4 loteria,10 64 loteria,10000 1 seed,10000 4 loteria,10000 64 loteria}"
suffix=
[ "${NOFSYNC:-}" = 1 ] && suffix=" (no fsync)"
n=0
for cfg in "${cfgs[@]}"; do
  read -r batch inflight proto <<<"$cfg"
  label="batch.maxAmount=$batch in-flight=$inflight protocol=$proto$suffix"
  [ "$batch" = 10000 ] && label="full 8 KiB frames in-flight=$inflight protocol=$proto$suffix"
  times=$work/times
  : >"$times"
  for _ in $(seq 1 "$RUNS"); do
    n=$((n + 1))
    one_run "$n" "$batch" "$inflight" "$proto" >>"$times"
  done
  printf '%-60s %s\n' "$label" "$(stats <"$times")"
done
