# shellcheck shell=bash
# shellcheck disable=SC2034 # WHY, STATUS and REPLY are this file's results
# Shared by scripts/demo.sh and scripts/bench-official.sh (sourced, not run):
# ports that are free or named with what holds them, and a readiness check
# that proves the central answering is the one the script started.
#
# The sourcing script sets PROG (its name, for messages) before use.

# PROG is the sourcing script's name, for its messages.
PROG=${PROG:-script}
say() { printf '%s: %s\n' "$PROG" "$*"; }
fail() { printf '%s: %s\n' "$PROG" "$*" >&2; exit 1; }

# holder prints what listens on TCP port $1 and succeeds, or fails when
# nothing does.
holder() {
  local out who
  if command -v ss >/dev/null 2>&1; then
    out=$(ss -Hltnp "sport = :$1" 2>/dev/null) || out=
    [ -n "$out" ] || return 1
    who=$(printf '%s\n' "$out" | grep -o 'users:(("[^"]*",pid=[0-9]*' | head -1 |
      sed -E 's/users:\(\("([^"]*)",pid=([0-9]+)/\1 (pid \2)/') || true
    echo "${who:-a process ss cannot name (run as its user or root to see it)}"
    return 0
  fi
  if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
    echo "a process (ss, from iproute2, would name it)"
    return 0
  fi
  return 1
}

# listener_pids prints the pids listening on TCP port $1, when ss can tell.
listener_pids() {
  command -v ss >/dev/null 2>&1 || return 0
  ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u
}

# pick_port sets REPLY to a port for the variable named $1: its value $3
# when given (an error naming the holder if taken), else the default $2
# when free, else a free port (saying so). Ports listed in $4 (spaces)
# are never picked.
pick_port() {
  local name=$1 def=$2 given=$3 avoid=" ${4:-} " who p
  if [ -n "$given" ]; then
    if who=$(holder "$given"); then
      fail "port $given ($name) is taken by $who: stop it, or choose another port ($name=...)"
    fi
    REPLY=$given
    return
  fi
  if [ "${avoid#* "$def" }" = "$avoid" ] && ! who=$(holder "$def"); then
    REPLY=$def
    return
  fi
  for _ in $(seq 1 100); do
    p=$((20000 + RANDOM % 12000)) # below Linux's ephemeral range
    [ "${avoid#* "$p" }" = "$avoid" ] || continue
    if ! holder "$p" >/dev/null; then
      [ -n "${who:-}" ] && say "port $def is taken by $who: using $p for $name instead"
      REPLY=$p
      return
    fi
  done
  fail "no free port found for $name: set $name"
}

# http_get prints the body of GET http://127.0.0.1:$1$2 (curl, or bash's
# /dev/tcp where curl is missing).
http_get() {
  if command -v curl >/dev/null 2>&1; then
    curl -fsS --max-time 2 "http://127.0.0.1:$1$2" 2>/dev/null
    return
  fi
  # shellcheck disable=SC2016 # expanded by the inner bash
  timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    printf "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n" "$2" >&3
    sed "1,/^\r\{0,1\}$/d" <&3' _ "$1" "$2" 2>/dev/null
}

# wait_own_central waits until the central with pid $1, started with its
# agencies' port $2 and metrics port $3, is ready, and checks it is the one
# answering: it is alive, /readyz answers on its metrics port, its /status
# (where the central has one) names its pid, and ss (where present) shows
# it holding both ports. $4 is the central program (for its healthcheck),
# $5 the seconds to wait. It succeeds, or sets WHY and fails.
wait_own_central() {
  local pid=$1 port=$2 mport=$3 prog=$4 secs=$5 deadline status_pid p pids
  WHY=''
  deadline=$((SECONDS + secs))
  until "$prog" healthcheck --url "http://127.0.0.1:$mport/readyz" >/dev/null 2>&1; do
    if ! kill -0 "$pid" 2>/dev/null; then
      WHY="before it was ready"
      return 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      WHY="it was not ready within $secs s"
      return 1
    fi
    sleep 0.1
  done
  if ! kill -0 "$pid" 2>/dev/null; then
    WHY="before it was ready (what answered on 127.0.0.1:$mport is another process)"
    return 1
  fi
  status_pid=$(http_get "$mport" /status | grep -o '"pid": *[0-9]*' | grep -o '[0-9]*$' | head -1) || status_pid=
  if [ -n "$status_pid" ] && [ "$status_pid" != "$pid" ]; then
    WHY="127.0.0.1:$mport answers for pid $status_pid, not for the central started here (pid $pid)"
    return 1
  fi
  for p in "$port" "$mport"; do
    pids=$(listener_pids "$p")
    if [ -n "$pids" ] && ! printf '%s\n' "$pids" | grep -qx "$pid"; then
      WHY="port $p is held by $(holder "$p"), not by the central started here (pid $pid)"
      return 1
    fi
  done
  return 0
}

# run_with execs program $1 after exporting the VAR=value words that
# follow up to "--", then the words of the variable named $2 (e.g.
# CENTRAL_ENV); the rest are the program's arguments. Call it in the
# background only (run_with ... &): that subshell becomes the program, so
# $! is the program's pid. Unlike env(1), a program path holding '=' is
# no problem.
run_with() {
  local prog=$1 extra=$2 kv
  shift 2
  while [ $# -gt 0 ] && [ "$1" != -- ]; do export "${1?}"; shift; done
  [ $# -gt 0 ] && shift
  for kv in ${!extra:-}; do export "${kv?}"; done
  exec "$prog" "$@"
}

# report_central says that the central with pid $1 failed ($3 says how),
# with its exit status when it is gone (reaping it) and the last lines of
# its log $2, on stderr.
report_central() {
  local pid=$1 log=$2 why=$3 status=0
  if ! kill -0 "$pid" 2>/dev/null; then
    wait "$pid" 2>/dev/null || status=$?
    printf '%s: the central exited (status %s) %s. Its last log lines (%s):\n' "$PROG" "$status" "$why" "$log" >&2
  else
    printf '%s: %s. The central'"'"'s last log lines (%s):\n' "$PROG" "$why" "$log" >&2
  fi
  tail -n 15 "$log" | sed 's/^/  | /' >&2
}

# cpu_seconds prints the CPU seconds (user + system) pid $1 has used so
# far, from /proc; 0 when it is gone.
cpu_seconds() {
  awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat" 2>/dev/null || echo 0
}

# stop_pid sends SIGTERM to pid $1 and waits up to $2 seconds for it to
# exit, then SIGKILL; it reaps it when it is this shell's child and sets
# STATUS to its exit status (143 or 137 for a signal).
stop_pid() {
  local pid=$1 secs=${2:-10} i
  STATUS=0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < secs * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || STATUS=$?
}
