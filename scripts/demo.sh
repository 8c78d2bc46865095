#!/usr/bin/env bash
# Runs the whole system on loopback, no Docker: builds, prepares data for 5
# agencies (generated, or the course's files from DATA_DIR), starts the
# central and the agencies, prints each agency's winners, stops cleanly.
#
#   scripts/demo.sh                 # generated data
#   DATA_DIR=../shared/datasets/tp0 scripts/demo.sh
set -euo pipefail

cd "$(dirname "$0")/.."
AGENCIES=${AGENCIES:-5}
PORT=${PORT:-12345}
METRICS_PORT=${METRICS_PORT:-9464}
BATCH=${BATCH:-100}
work=$(mktemp -d "${TMPDIR:-/tmp}/loteria-demo.XXXXXX")
central_pid=

cleanup() {
  if [ -n "$central_pid" ] && kill -0 "$central_pid" 2>/dev/null; then
    kill -TERM "$central_pid" 2>/dev/null || true
    wait "$central_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

make -s build

data="$work/data"
mkdir -p "$data"
if [ -n "${DATA_DIR:-}" ]; then
  for i in $(seq 1 "$AGENCIES"); do
    [ -f "$DATA_DIR/agency-$i.csv" ] || { echo "demo: $DATA_DIR/agency-$i.csv not found" >&2; exit 1; }
    ln -s "$(cd "$DATA_DIR" && pwd)/agency-$i.csv" "$data/agency-$i.csv"
  done
  echo "demo: using the files in $DATA_DIR"
else
  bin/gendata --agencies "$AGENCIES" --bets 10000 --seed 1 --out "$data"
fi

echo "demo: starting the central on 127.0.0.1:$PORT (metrics on 127.0.0.1:$METRICS_PORT)"
SERVER_HOST=127.0.0.1 SERVER_PORT=$PORT CLIENT_COUNT=$AGENCIES STORE_PATH="$work/bets.csv" \
  METRICS_ADDR=127.0.0.1:$METRICS_PORT LOGGING_LEVEL=${LOGGING_LEVEL:-INFO} \
  bin/central 2> "$work/central.log" &
central_pid=$!
for _ in $(seq 1 100); do
  bin/central healthcheck --url "http://127.0.0.1:$METRICS_PORT/readyz" 2>/dev/null && break
  kill -0 "$central_pid" 2>/dev/null || { cat "$work/central.log" >&2; exit 1; }
  sleep 0.1
done

start=$(date +%s.%N)
pids=()
for i in $(seq 1 "$AGENCIES"); do
  CLI_ID=$i CLI_SERVER_ADDRESS=127.0.0.1:$PORT CLI_DATA_PATH="$data/agency-$i.csv" \
    CLI_BATCH_MAXAMOUNT=$BATCH CLI_LOG_LEVEL=WARN bin/agency > "$work/agency-$i.out" 2> "$work/agency-$i.log" &
  pids+=($!)
done
failed=0
for i in $(seq 1 "$AGENCIES"); do
  if ! wait "${pids[$((i-1))]}"; then
    echo "demo: agency $i failed:" >&2
    cat "$work/agency-$i.log" >&2
    failed=1
  fi
done
end=$(date +%s.%N)

for i in $(seq 1 "$AGENCIES"); do
  [ -s "$work/agency-$i.out" ] && cut -c1-200 "$work/agency-$i.out"
done
grep -E 'sorteo' "$work/central.log" || true
awk -v a="$AGENCIES" -v s="$start" -v e="$end" -v n="$(wc -l < "$work/bets.csv")" 'BEGIN { printf "demo: %d agencies done in %.3f s; %d bets stored\n", a, e - s, n }'

kill -TERM "$central_pid"
wait "$central_pid" && echo "demo: central stopped cleanly"
central_pid=
exit $failed
