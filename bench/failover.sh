#!/usr/bin/env bash
# High-availability figures of the gateway (issue 10), on this machine, on 127.0.0.1:
# a vertogw map with partition A = [a1, a2] and partition B = [b1] (three simulated
# mod_verto nodes, each its own process) and the default [health] values.
#   detection  a1 is SIGKILLed (refused) or SIGSTOPped (black-holed); the time from the
#              signal to the gateway's WARN "health: node state changed ... to=down"
#              line, --detect runs each, a1 restarted between runs (median, max)
#   failover   3,000 logged-in idle A sessions and 200 B sessions at 10 echo/s; a1 is
#              signalled; every closed A session reconnects and logs in again
#              (vertogw-bench --mode failover): close codes, time until all are back,
#              which node took them, B's RTT meanwhile; a fresh stack per run
#
# Usage: bench/failover.sh [--detect N] [--reps N] [--signals kill,stop]
#                          [--sessions N] [--background N] [--out DIR]
#
# Every process is started here, in the foreground, on 127.0.0.1 only, with its map,
# certificate and logs under a temp dir, and stopped by its PID (trap on EXIT); a
# SIGSTOPped node is continued before it is stopped. Nothing else is touched.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH="$ROOT/bench"
# shellcheck source=bench/lib.sh
source "$BENCH/lib.sh"

usage() {
  sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
  cat <<'EOF'

Options:
  --detect N       detection runs per signal (default 10; 0 skips them)
  --reps N         failover runs per signal (default 3; 0 skips them)
  --signals LIST   kill, stop or kill,stop (default kill,stop)
  --sessions N     failover: A sessions (default 3000)
  --background N   failover: B sessions at 10 echo/s each (default 200)
  --out DIR        where the JSON reports, the detection times and the logs go
                   (default bench/results/<stamp>-failover/)
Environment:
  VERTOGW_BIN      the vertogw binary (default target/release/vertogw)
  BENCH_BIN        the load generator (default target/release/vertogw-bench)
  BENCH_PORT_BASE  ports used: BASE+81 a1, +82 a2, +83 b1, +90 the admin API, +443 the gateway
                   (default 29000, apart from bench/run.sh's 28000)
  BENCH_KEEP_TMP=1 keep the temp dir (rendered map, certificate)
EOF
}

# ---------------------------------------------------------------- options
DETECT=10 REPS=3 SIGNALS="kill,stop" SESSIONS=3000 BACKGROUND=200 OUT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --detect) DETECT=${2:?--detect needs a number}; shift ;;
    --reps) REPS=${2:?--reps needs a number}; shift ;;
    --signals) SIGNALS=${2:?--signals needs a list}; shift ;;
    --sessions) SESSIONS=${2:?--sessions needs a number}; shift ;;
    --background) BACKGROUND=${2:?--background needs a number}; shift ;;
    --out) OUT=${2:?--out needs a directory}; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "error: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
num() { [[ "$2" =~ ^[0-9]+$ ]] && [ "$2" -le "$3" ] || { echo "error: $1 must be 0-$3" >&2; exit 2; }; }
num --detect "$DETECT" 100
num --reps "$REPS" 20
num --sessions "$SESSIONS" 9000
num --background "$BACKGROUND" 1000
[ "$SESSIONS" -ge 1 ] || { echo "error: --sessions must be at least 1" >&2; exit 2; }
for s in ${SIGNALS//,/ }; do
  case "$s" in kill|stop) ;; *) echo "error: unknown signal $s (kill or stop)" >&2; exit 2 ;; esac
done

BIN=${VERTOGW_BIN:-$ROOT/target/release/vertogw}
GEN=${BENCH_BIN:-$ROOT/target/release/vertogw-bench}
PORT_BASE=${BENCH_PORT_BASE:-29000}
A1_PORT=$((PORT_BASE + 81)) A2_PORT=$((PORT_BASE + 82)) B1_PORT=$((PORT_BASE + 83))
GW_PORT=$((PORT_BASE + 443))
DOMAIN=bench.test
# A users from 1000, B users from 50000: the map's two extension ranges.
A_USER_START=1000 B_USER_START=50000
# Default [health]: a node that stops answering is down within fall × interval_ms +
# timeout_ms = 3 × 1000 + 1000 ms. The waits below allow well over that.
DETECT_BOUND_MS=4000
WAIT_DOWN_S=20 WAIT_UP_S=20
RECOVER_MS=30000

STAMP=$(date -u +%Y-%m-%dT%H%MZ)
T0=$(date +%s)

# 3,200 sessions hold 6,400 sockets in the gateway: children inherit the hard limit.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# ---------------------------------------------------------------- processes
# Everything started here is recorded in STARTED and stopped by PID, nothing else.
STARTED=()
LAST_PID=""
WORK=$(mktemp -d "${TMPDIR:-/tmp}/vgwfailover.XXXXXX")
LOGS="$WORK/logs"
mkdir -p "$LOGS"
RESULTS=""

cleanup() {
  local rc=$? i
  trap - EXIT INT TERM
  for ((i = ${#STARTED[@]} - 1; i >= 0; i--)); do stop_pid "${STARTED[$i]}"; done
  if [ -n "$RESULTS" ] && [ -d "$LOGS" ]; then
    mkdir -p "$RESULTS/logs" && cp -r "$LOGS"/. "$RESULTS/logs"/ 2>/dev/null || true
  fi
  if [ "${BENCH_KEEP_TMP:-0}" = 1 ]; then echo "temp dir kept: $WORK"; else rm -rf "$WORK"; fi
  say "total time: $(elapsed) s"
  exit "$rc"
}
trap cleanup EXIT
trap 'echo "interrupted" >&2; exit 130' INT TERM

# ---------------------------------------------------------------- set-up
[ -x "$BIN" ] || die "$BIN not found: build it first (cargo build --release --workspace)"
[ -x "$GEN" ] || die "$GEN not found: build it first (cargo build --release --workspace)"
command -v openssl >/dev/null || die "openssl is needed to generate the test certificate"
command -v python3 >/dev/null || die "python3 is needed to read the gateway's log"
# One copy of each binary for the whole run, even if cargo rebuilds target/release meanwhile.
cp "$BIN" "$WORK/vgw" && BIN_SRC=$BIN && BIN="$WORK/vgw"
cp "$GEN" "$WORK/vgw-bench" && GEN="$WORK/vgw-bench"
LOGTOOL="$BENCH/failover_log.py"

RESULTS=${OUT:-$BENCH/results/$STAMP-failover}
mkdir -p "$RESULTS"

CERTS="$WORK/certs"
make_certs "$CERTS" "$LOGS/openssl.log" "vertogw failover bench CA"

MAP="$WORK/failover.toml"
sed -e "s|@@LISTEN_PORT@@|$GW_PORT|g" -e "s|@@A1_PORT@@|$A1_PORT|g" \
    -e "s|@@A2_PORT@@|$A2_PORT|g" -e "s|@@B1_PORT@@|$B1_PORT|g" "$BENCH/failover.toml.in" >"$MAP"
printf '\n[admin]\nlisten = "127.0.0.1:%s"\n' "$((PORT_BASE + 90))" >>"$MAP"
"$BIN" check --config "$MAP" >"$LOGS/check.log" 2>&1 || { cat "$LOGS/check.log" >&2; die "vertogw check rejected the map"; }

{
  echo "stamp=$STAMP"
  echo "nproc=$(nproc)"
  echo "cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  echo "kernel=$(uname -sr)"
  echo "nofile=$(ulimit -n)"
  echo "vertogw=$("$BIN" --version 2>/dev/null | sed 's/^[^ ]* //') ($BIN_SRC) $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo '+dirty')"
  echo "params=detect $DETECT per signal; failover $REPS rep(s) per signal of $SESSIONS A + $BACKGROUND B sessions; signals $SIGNALS"
} >"$RESULTS/env.txt"

# Health transitions are WARN; the initial states INFO. JSON lines carry a microsecond
# RFC 3339 timestamp of the system clock, which is what the detection times are read from.
export RUST_LOG=warn,vertogw::health=info,vertogw::commands::signals=info
GW_LOG=""   # the current gateway's log
declare -A NODE_PID=() NODE_PORT=([a1]=$A1_PORT [a2]=$A2_PORT [b1]=$B1_PORT)
GW_PID=""
STACK_N=0

node_up() { # node_up NAME: start the sim node NAME (fresh process) and wait until it listens
  local name=$1
  wait_port_free "${NODE_PORT[$name]}" || return 1
  start_proc "$name" "$BIN" sim-node --listen "127.0.0.1:${NODE_PORT[$name]}" --name "$name" \
    --users "$BENCH/users.toml"
  NODE_PID[$name]=$LAST_PID
  wait_listen "$name" "$LAST_PID" "${NODE_PORT[$name]}"
}

node_gone() { # node_gone NAME: a signalled node is killed (a stopped one too) and reaped
  local pid=${NODE_PID[$1]}
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  forget_pid "$pid"
}

await_state() { # await_state NODE STATE AFTER_LINE TIMEOUT_S: prints "<unix s> <line>"
  python3 "$LOGTOOL" wait "$GW_LOG" --node "$1" --to "$2" --after-line "$3" --timeout "$4"
}

stack_up() { # fresh a1, a2, b1 and gateway; returns once the gateway has all three up
  STACK_N=$((STACK_N + 1))
  local n
  for n in a1 a2 b1; do node_up "$n" || return 1; done
  wait_port_free "$GW_PORT" || return 1
  GW_LOG="$LOGS/gateway.$STACK_N.log"
  start_proc "gateway.$STACK_N" "$BIN" serve --config "$MAP" --log-format json
  GW_PID=$LAST_PID
  wait_listen "gateway.$STACK_N" "$GW_PID" "$GW_PORT" || return 1
  for n in a1 a2 b1; do await_state "$n" up 0 "$WAIT_UP_S" >/dev/null || return 1; done
  python3 "$BENCH/wss_probe.py" --port "$GW_PORT" --ca "$CERTS/ca.crt" --timeout 10 \
    --login "$A_USER_START@$DOMAIN" >>"$LOGS/probe.log" 2>&1 ||
    { echo "error: the gateway does not answer wss + Verto login:" >&2; tail -n 3 "$LOGS/probe.log" >&2; return 1; }
}

stack_down() {
  [ -z "$GW_PID" ] || stop_pid "$GW_PID"
  GW_PID=""
  local n
  for n in b1 a2 a1; do [ -z "${NODE_PID[$n]:-}" ] || stop_pid "${NODE_PID[$n]}"; done
  NODE_PID=()
}

sigflag() { case "$1" in kill) echo -KILL ;; stop) echo -STOP ;; esac; }

# ---------------------------------------------------------------- detection
# One gateway for all detection runs (a node's state does not depend on the others);
# a1 is replaced by a fresh process after each run and must be up again before the next.
FAILED=()
declare -A DETECT_MS=()
if [ "$DETECT" -gt 0 ]; then
  say "detection: $DETECT run(s) per signal ($SIGNALS); bound with the default [health]: $DETECT_BOUND_MS ms"
  stack_up || die "the stack did not come up"
  for sig in ${SIGNALS//,/ }; do
    for i in $(seq 1 "$DETECT"); do
      # A random phase against the 1 s probe interval, so the runs sample all of it.
      sleep "$(printf '0.%03d' $((RANDOM % 1000)))"
      after=$(python3 "$LOGTOOL" lines "$GW_LOG")
      t_sig=$EPOCHREALTIME
      kill "$(sigflag "$sig")" "${NODE_PID[a1]}"
      if read -r t_down _ < <(await_state a1 down "$after" "$WAIT_DOWN_S"); then
        ms=$(awk -v a="$t_down" -v b="$t_sig" 'BEGIN { printf "%.1f", (a - b) * 1000 }')
        DETECT_MS[$sig]="${DETECT_MS[$sig]:-} $ms"
        echo "$sig $i $ms" >>"$RESULTS/detect.txt"
        say "  $sig run $i: down after $ms ms"
      else
        FAILED+=("detect $sig run $i: a1 not down within $WAIT_DOWN_S s")
        say "  $sig run $i: a1 NOT down within $WAIT_DOWN_S s"
      fi
      node_gone a1
      after=$(python3 "$LOGTOOL" lines "$GW_LOG")
      node_up a1 || die "a1 did not restart"
      await_state a1 up "$after" "$WAIT_UP_S" >/dev/null || die "a1 not up again within $WAIT_UP_S s"
    done
  done
  stack_down
fi

# ---------------------------------------------------------------- failover
# A fresh stack per run: after a failover partition A stays on a2 for failback_delay_ms.
if [ "$REPS" -gt 0 ]; then
  say "failover: $REPS rep(s) per signal ($SIGNALS), $SESSIONS A sessions + $BACKGROUND B sessions at 10/s"
  for rep in $(seq 1 "$REPS"); do
    for sig in ${SIGNALS//,/ }; do
      if ! stack_up; then FAILED+=("failover $sig r$rep: stack did not come up"); stack_down; continue; fi
      base="$RESULTS/failover.$sig.r$rep"
      cmd=("$GEN" --url "wss://127.0.0.1:$GW_PORT/" --ca "$CERTS/ca.crt" --sni localhost
           --domain "$DOMAIN" --json --mode failover --sessions "$SESSIONS" --user-start "$A_USER_START"
           --background-sessions "$BACKGROUND" --background-user-start "$B_USER_START"
           --background-rate 10 --payload 200 --kill-pid "${NODE_PID[a1]}" --signal "$sig"
           --recover-timeout-ms "$RECOVER_MS" --watch-pid "$GW_PID")
      rc=0
      # In the background + wait, so that a signal to this script is handled at once.
      timeout --kill-after=10 180 "${cmd[@]}" >"$base.json" 2>"$LOGS/bench.$sig.r$rep.log" &
      gen=$!
      STARTED+=("$gen")
      wait "$gen" || rc=$?
      forget_pid "$gen"
      kill -0 "$GW_PID" 2>/dev/null || FAILED+=("failover $sig r$rep: the gateway exited")
      say "  $sig r$rep: generator exit $rc"
      [ "$rc" = 0 ] || FAILED+=("failover $sig r$rep: generator exit $rc (see $base.json)")
      if [ -s "$base.json" ]; then
        python3 "$LOGTOOL" report "$base.json" || true
        # The same signal's detection time, from the report's wall clock of the signal.
        t_sig=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["failover"]["signal_unix_ms"] / 1000)' "$base.json" 2>/dev/null || echo "")
        if [ -n "$t_sig" ] && read -r t_down _ < <(await_state a1 down 0 1 2>/dev/null); then
          echo "  gateway: a1 down $(awk -v a="$t_down" -v b="$t_sig" 'BEGIN { printf "%.0f", (a - b) * 1000 }') ms after the signal"
        fi
      fi
      node_gone a1
      stack_down
    done
  done
fi

# ---------------------------------------------------------------- summary
echo
if [ "$DETECT" -gt 0 ]; then
  echo "Detection (signal → WARN 'health: node state changed' to=down; bound $DETECT_BOUND_MS ms):"
  for sig in ${SIGNALS//,/ }; do
    # shellcheck disable=SC2086 # a list of numbers
    python3 "$LOGTOOL" stats --label "  $sig" ${DETECT_MS[$sig]:-} || true
  done
fi
if [ "$REPS" -gt 0 ]; then
  echo "Failover reports: $RESULTS/failover.<signal>.r<rep>.json"
fi
if [ ${#FAILED[@]} -gt 0 ]; then
  printf 'problem: %s\n' "${FAILED[@]}" >&2
  exit 1
fi
say "done; results in $RESULTS"
