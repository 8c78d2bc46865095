#!/usr/bin/env bash
# Runs the whole system on loopback, no Docker: builds, prepares data for
# the agencies (generated, or the course's files from DATA_DIR), starts a
# central on a fresh store and the agencies, prints every agency's winners
# in full and a one-line summary, and stops everything it started.
#
#   scripts/demo.sh                                   # generated data
#   DATA_DIR=../shared/datasets/tp0 scripts/demo.sh   # the course's files
#
# Settings (environment variables; make demo passes them on):
#   AGENCIES=5            agencies (files agency-1.csv .. agency-N.csv)
#   BETS=10000            bets per generated file
#   BATCH=100             bets per batch (the agency's batch.maxAmount)
#   DATA_DIR=dir          the agencies' files instead of generated ones
#   PORT, METRICS_PORT    the central's ports; by default 12345 and 9464 when
#                         free, any free port otherwise. A port given here
#                         that is taken is an error, naming what holds it.
#   STORE_DIR=dir         keep the store there (default: a new temporary directory)
#   KEEP=1                keep the work directory (data, logs, store) at the end
#   TIMEOUT=120           seconds the agencies may take
#   BIN=dir               prebuilt central, agency and gendata (default: make build, bin/)
#   CENTRAL_ENV, AGENCY_ENV   extra VAR=value settings for one side
#
# Exit status 0 only when every agency got its winners, the store holds
# every bet of the files and the central stopped cleanly.
set -euo pipefail

# Paths given relative to where the script was called from stay so.
for v in DATA_DIR STORE_DIR BIN; do
  case ${!v:-} in "" | /*) ;; *) printf -v "$v" '%s/%s' "$PWD" "${!v}" ;; esac
done
cd "$(dirname "$0")/.."
AGENCIES=${AGENCIES:-5}
BETS=${BETS:-10000}
BATCH=${BATCH:-100}
TIMEOUT=${TIMEOUT:-120}

PROG=demo
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

central_pid=
agency_pids=()
work=

# cleanup stops what this script started, by pid, and nothing else.
# shellcheck disable=SC2317 # called by the trap
cleanup() {
  local code=$? pid
  trap - EXIT INT TERM
  for pid in "${agency_pids[@]}" $central_pid; do
    kill -0 "$pid" 2>/dev/null && stop_pid "$pid" 10
  done
  if [ -n "$work" ]; then
    if [ "${KEEP:-}" = 1 ]; then
      say "kept $work (data, logs, store)"
    else
      rm -rf "$work"
    fi
  fi
  exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# central_failed reports that the central is gone (or not ours) with the
# last lines of its own log, keeps the work directory, and fails.
central_failed() {
  report_central "$central_pid" "$work/central.log" "$1"
  kill -0 "$central_pid" 2>/dev/null || central_pid=
  KEEP=1
  exit 1
}

# Ports first, so a taken port fails at once, before any build.
pick_port PORT 12345 "${PORT:-}"
port=$REPLY
pick_port METRICS_PORT 9464 "${METRICS_PORT:-}" "$port"
mport=$REPLY
[ "$port" != "$mport" ] || fail "PORT and METRICS_PORT are both $port: choose two ports"

if [ -z "${BIN:-}" ]; then
  say "building the programs into bin/ (make build)"
  make -s build
  BIN=bin
fi
for p in central agency gendata; do
  [ -x "$BIN/$p" ] || fail "$BIN/$p not found or not executable (make build writes bin/)"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/loteria-demo.XXXXXX")
data="$work/data"
mkdir -p "$data"
if [ -n "${DATA_DIR:-}" ]; then
  for i in $(seq 1 "$AGENCIES"); do
    [ -f "$DATA_DIR/agency-$i.csv" ] || fail "$DATA_DIR/agency-$i.csv not found (DATA_DIR needs agency-1.csv .. agency-$AGENCIES.csv)"
    ln -s "$(cd "$DATA_DIR" && pwd)/agency-$i.csv" "$data/agency-$i.csv"
  done
  say "data: the files in $DATA_DIR"
else
  "$BIN/gendata" --agencies "$AGENCIES" --bets "$BETS" --seed 1 --out "$data" >/dev/null
  say "data: $AGENCIES generated files of $BETS bets in $data"
fi
in_files=$(cat "$data"/agency-*.csv | grep -c . || true)

store_dir=${STORE_DIR:-$work/store}
mkdir -p "$store_dir"
store="$store_dir/bets.csv"
before=0
[ -f "$store" ] && before=$(wc -l < "$store")
if [ -n "${STORE_DIR:-}" ]; then
  say "store: $store (STORE_DIR; it holds $before bets before this run)"
elif [ "${KEEP:-}" = 1 ]; then
  say "store: $store (kept: KEEP=1)"
else
  say "store: $store (a fresh one, removed at the end; KEEP=1 keeps it)"
fi

run_with "$BIN/central" CENTRAL_ENV SERVER_HOST=127.0.0.1 SERVER_PORT="$port" CLIENT_COUNT="$AGENCIES" \
  STORE_PATH="$store" METRICS_ADDR="127.0.0.1:$mport" LOGGING_LEVEL="${LOGGING_LEVEL:-INFO}" \
  2> "$work/central.log" &
central_pid=$!
wait_own_central "$central_pid" "$port" "$mport" "$BIN/central" 30 || central_failed "$WHY"
say "central: pid $central_pid on 127.0.0.1:$port, metrics on http://127.0.0.1:$mport/metrics"

start=$(date +%s%N)
for i in $(seq 1 "$AGENCIES"); do
  run_with "$BIN/agency" AGENCY_ENV CLI_ID="$i" CLI_SERVER_ADDRESS="127.0.0.1:$port" \
    CLI_DATA_PATH="$data/agency-$i.csv" CLI_BATCH_MAXAMOUNT="$BATCH" CLI_LOG_LEVEL=WARN METRICS_ADDR=off \
    > "$work/agency-$i.out" 2> "$work/agency-$i.log" &
  agency_pids+=($!)
done
say "agencies: $AGENCIES started, waiting for their winners (at most ${TIMEOUT} s)"

# Wait for the agencies, watching the central: if it dies, its own error
# is the news, not the agencies' retries.
deadline=$((SECONDS + TIMEOUT))
while :; do
  running=0
  for pid in "${agency_pids[@]}"; do kill -0 "$pid" 2>/dev/null && running=$((running + 1)); done
  [ "$running" -gt 0 ] || break
  kill -0 "$central_pid" 2>/dev/null || central_failed "while $running agencies were still running"
  [ "$SECONDS" -lt "$deadline" ] || central_failed "$running agencies had not finished after ${TIMEOUT} s (TIMEOUT)"
  sleep 0.05
done
end=$(date +%s%N)

failed=0
for i in $(seq 1 "$AGENCIES"); do
  status=0
  wait "${agency_pids[$((i - 1))]}" || status=$?
  if [ "$status" -ne 0 ]; then
    printf 'demo: agency %d exited with status %d; its last log lines (%s):\n' "$i" "$status" "$work/agency-$i.log" >&2
    tail -n 10 "$work/agency-$i.log" | sed 's/^/  | /' >&2
    failed=1
  fi
done
agency_pids=()

# Every agency's winners, in full: the agency prints one line per round,
# "agency <id> round <r> winners (<k>): <dni;dni...>" or "... (0): none"
# (older agencies: "agency <id> winners (<k>): <dni;...>").
width=${COLUMNS:-100}
[ "$width" -ge 40 ] 2>/dev/null || width=100
echo "Winners:"
winners=0
for i in $(seq 1 "$AGENCIES"); do
  if ! out=$(awk -v want="$i" -v width="$width" '
    /^agency [0-9]+ (round [0-9]+ )?winners \([0-9]+\): ?/ {
      id = $2; round = ""
      if ($3 == "round") round = $4
      if (id != want) next
      k = $0; sub(/^[^(]*\(/, "", k); sub(/\).*$/, "", k)
      list = $0; sub(/^[^:]*: ?/, "", list); sub(/\r$/, "", list)
      n = (list == "" || list == "none" || list == "NO_WINNERS") ? 0 : split(list, dni, ";")
      head = "  agency " id (round != "" ? ", round " round : "") ": "
      if (n == 0) { print head "none"; if (k + 0 != 0) bad = 1 }
      else {
        print head k " winner" (k == 1 ? "" : "s")
        line = "      "
        for (j = 1; j <= n; j++) {
          tok = dni[j] (j < n ? ";" : "")
          if (length(line) + length(tok) > width && line != "      ") { print line; line = "      " }
          line = line tok
        }
        print line
        if (k + 0 != n) { printf "      (the agency announced %d winners but listed %d)\n", k, n; bad = 1 }
      }
      total += k; seen = 1
    }
    END { if (!seen) exit 2; print "#winners " total; exit bad }
  ' "$work/agency-$i.out"); then
    if ! printf '%s\n' "$out" | grep -q '^#winners'; then
      echo "  agency $i: printed no winners (its output: $work/agency-$i.out)"
    else
      printf '%s\n' "$out" | grep -v '^#winners'
    fi
    failed=1
    KEEP=1
    continue
  fi
  printf '%s\n' "$out" | grep -v '^#winners'
  winners=$((winners + $(printf '%s\n' "$out" | sed -n 's/^#winners //p')))
done

stop_pid "$central_pid" 15
central_pid=
if [ "$STATUS" -ne 0 ]; then
  printf 'demo: the central exited with status %d when stopped (SIGTERM); its last log lines:\n' "$STATUS" >&2
  tail -n 15 "$work/central.log" | sed 's/^/  | /' >&2
  failed=1
fi

stored=0
[ -f "$store" ] && stored=$(wc -l < "$store")
new=$((stored - before))
if [ "$new" -ne "$in_files" ]; then
  echo "demo: the store gained $new bets but the agencies' files hold $in_files" >&2
  failed=1
fi
extra=
[ "$before" -eq 0 ] || extra=" ($before were there before)"
awk -v a="$AGENCIES" -v n="$stored" -v x="$extra" -v w="$winners" -v s="$start" -v e="$end" \
  'BEGIN { printf "demo: %d agencies, %d bets stored%s, %d winners, %.3f s from the agencies'"'"' start to the last winners\n", a, n, x, w, (e - s) / 1e9 }'
exit "$failed"
