#!/usr/bin/env bash
# Times the official 5-agency run as the seed's figures were measured: from
# the agencies' start to the last winners message, 5 agency processes and
# one central process on loopback, durable acks (fsync) on.
#
#   scripts/bench-official.sh [runs]      (DATA_DIR=../shared/datasets/tp0 by default)
# Prints one line per configuration: min / median / max wall time over the runs.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-10}
DATA_DIR=${DATA_DIR:-../shared/datasets/tp0}
PORT=${PORT:-23999}
make -s build
work=$(mktemp -d "${TMPDIR:-/tmp}/loteria-bench.XXXXXX")
trap 'pkill -TERM -f "$work" 2>/dev/null || true; rm -rf "$work"' EXIT

one_run() { # batch inflight protocol → prints seconds
  local batch=$1 inflight=$2 proto=$3
  rm -f "$work/bets.csv" "$work/bets.csv.commits"
  env SERVER_HOST=127.0.0.1 SERVER_PORT=$PORT CLIENT_COUNT=5 STORE_PATH="$work/bets.csv" METRICS_ADDR=127.0.0.1:0 \
    LOGGING_LEVEL=WARN ${CENTRAL_ENV:-} bin/central 2>>"$work/central.log" &
  local central=$!
  until (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null; do sleep 0.02; done
  local start end pids=()
  start=$(date +%s%N)
  for i in 1 2 3 4 5; do
    env CLI_ID=$i CLI_SERVER_ADDRESS=127.0.0.1:$PORT CLI_DATA_PATH="$DATA_DIR/agency-$i.csv" CLI_BATCH_MAXAMOUNT=$batch \
      CLI_BATCH_INFLIGHT=$inflight CLI_PROTOCOL=$proto CLI_LOG_LEVEL=ERROR ${AGENCY_ENV:-} \
      bin/agency >/dev/null 2>>"$work/agency.log" &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p"; done
  end=$(date +%s%N)
  kill -TERM "$central"; wait "$central"
  [ "$(wc -l < "$work/bets.csv")" -eq 78697 ] || { echo "bench: store does not hold 78,697 bets" >&2; exit 1; }
  awk -v s="$start" -v e="$end" 'BEGIN { printf "%.4f\n", (e - s) / 1e9 }'
}

stats() { sort -n | awk '{ a[NR] = $1 } END { printf "min %.3f s  median %.3f s  max %.3f s  (%d runs)", a[1], (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2), a[NR], NR }'; }

# CONFIGS: comma-separated "maxAmount inFlight protocol" triples.
IFS=, read -ra cfgs <<< "${CONFIGS:-10 1 seed,10 4 loteria,10 64 loteria,10000 1 seed,10000 4 loteria,10000 64 loteria}"
for cfg in "${cfgs[@]}"; do
  set -- $cfg
  label="batch.maxAmount=$1 in-flight=$2 protocol=$3"
  [ "$1" = 10000 ] && label="full 8 KiB frames in-flight=$2 protocol=$3"
  printf '%-48s ' "$label"
  for _ in $(seq 1 "$RUNS"); do one_run "$@"; done | stats
  echo
done
