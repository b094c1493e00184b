#!/usr/bin/env bash
# System calls the gateway makes per request/reply round trip, counted by strace, on
# this machine, on 127.0.0.1: one simulated mod_verto node (plain ws) behind
# `vertogw serve` (the bench map, bench/gateway.toml.in), loaded by vertogw-bench
# (echo requests of 200 bytes of padding) in mode throughput or steady.
#
# Usage: bench/syscalls.sh [--bin PATH] [--mode throughput|steady] [--duration S]
#                          [--sessions N] [--rate R] [--cpu]
#
# strace slows the gateway down a lot, so the throughput and latency of a traced run
# mean nothing: only the counts per round trip do. With --cpu nothing is traced: the
# gateway's CPU time (user and kernel, from /proc/<pid>/stat) and context switches
# (all its threads) are read around the same two passes instead, per round trip, with
# the TCP segments sent on the machine (all of it: both legs, every process), and the
# pure ACKs among them. Every process is started here, in
# the foreground, with its map, certificate and logs under a temp dir, and stopped by
# its PID (trap on EXIT). Nothing else is touched.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH="$ROOT/bench"
# shellcheck source=bench/lib.sh
source "$BENCH/lib.sh"

usage() {
  sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
  cat <<'EOF'

Options:
  --bin PATH       the vertogw binary to measure (default target/release/vertogw)
  --mode MODE      throughput (closed loop) or steady (fixed rate) (default throughput)
  --duration S     load window, seconds (default 8)
  --sessions N     sessions (default 64 for throughput, 200 for steady)
  --rate R         steady: requests per second per session (default 10)
  --cpu            CPU time, context switches and TCP segments per round trip instead
                   of system calls (untraced passes, so the figures are of the real
                   gateway; segments are counted machine-wide)
Environment:
  BENCH_BIN        the load generator (default target/release/vertogw-bench)
  BENCH_PORT_BASE  ports used: BASE+81 the node, +90 the admin API, +443 the gateway
                   (default 30000, apart from run.sh's 28000 and failover.sh's 29000)
  BENCH_KEEP_TMP=1 keep the temp dir (map, certificate, logs, raw reports)
EOF
}

# ---------------------------------------------------------------- options
BIN=$ROOT/target/release/vertogw MODE=throughput DURATION=8 SESSIONS="" RATE=10 CPU=0
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) BIN=${2:?--bin needs a path}; shift ;;
    --mode) MODE=${2:?--mode needs throughput or steady}; shift ;;
    --duration) DURATION=${2:?--duration needs seconds}; shift ;;
    --sessions) SESSIONS=${2:?--sessions needs a number}; shift ;;
    --rate) RATE=${2:?--rate needs a number}; shift ;;
    --cpu) CPU=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "error: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
case "$MODE" in
  throughput) SESSIONS=${SESSIONS:-64} ;;
  steady) SESSIONS=${SESSIONS:-200} ;;
  *) echo "error: --mode must be throughput or steady" >&2; exit 2 ;;
esac
num() { [[ "$2" =~ ^[0-9]+$ ]] && [ "$2" -ge 1 ] && [ "$2" -le "$3" ] || { echo "error: $1 must be 1-$3" >&2; exit 2; }; }
num --duration "$DURATION" 600
num --sessions "$SESSIONS" 5000
num --rate "$RATE" 1000

GEN=${BENCH_BIN:-$ROOT/target/release/vertogw-bench}
PORT_BASE=${BENCH_PORT_BASE:-30000}
NODE_PORT=$((PORT_BASE + 81)) ADMIN_PORT=$((PORT_BASE + 90)) GW_PORT=$((PORT_BASE + 443))
DOMAIN=bench.test
PAYLOAD=200
# After the generator exits, the gateway still closes the node side of each session;
# the trace stays attached this long so that those calls are counted too (the same in
# both traced passes, so they cancel out).
SETTLE_S=1
# A traced pass: logins under strace are slow (each TLS handshake is dozens of traced
# calls); the generator's own bound per login is 30 s, its drain and close 5 s each.
PASS_LIMIT_S=$((DURATION + 180))
# Per round trip, syscalls below this are left out of the table (not of the total).
MIN_PER_RT=0.05

T0=$(date +%s)

# ---------------------------------------------------------------- processes
# Everything started here is recorded in STARTED and stopped by PID, nothing else.
STARTED=()
LAST_PID=""
WORK=$(mktemp -d "${TMPDIR:-/tmp}/vgwsyscalls.XXXXXX")
LOGS="$WORK/logs"
mkdir -p "$LOGS"

cleanup() {
  local rc=$? i
  trap - EXIT INT TERM
  # Newest first: a tracer goes before its tracee, the gateway before its node.
  for ((i = ${#STARTED[@]} - 1; i >= 0; i--)); do stop_pid "${STARTED[$i]}"; done
  if [ "${BENCH_KEEP_TMP:-0}" = 1 ]; then echo "temp dir kept: $WORK" >&2; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'echo "interrupted" >&2; exit 130' INT TERM

# ---------------------------------------------------------------- set-up
[ -x "$BIN" ] || die "$BIN not found or not executable"
[ -x "$GEN" ] || die "$GEN not found: build it first (cargo build --release --workspace)"
if [ "$CPU" = 0 ]; then
  STRACE=$(command -v strace) || die "strace is needed (apt-get install strace)"
fi
command -v openssl >/dev/null || die "openssl is needed to generate the test certificate"
command -v jq >/dev/null || die "jq is needed to read the generator's report"
# One copy of each binary for the whole run, even if cargo rebuilds target/release meanwhile.
cp "$BIN" "$WORK/vgw" && BIN_SRC=$BIN && BIN="$WORK/vgw"
cp "$GEN" "$WORK/vgw-bench" && GEN="$WORK/vgw-bench"

CERTS="$WORK/certs"
make_certs "$CERTS" "$LOGS/openssl.log" "vertogw syscalls bench CA"

# The map as run.sh renders it (its certificate paths are relative to the map's dir).
MAP="$WORK/gateway.toml"
sed -e "s|@@LISTEN_PORT@@|$GW_PORT|g" -e "s|@@NODE_PORT@@|$NODE_PORT|g" "$BENCH/gateway.toml.in" >"$MAP"
# The admin API off the default 9090, so a run never collides with a gateway on this machine.
printf '\n[admin]\nlisten = "127.0.0.1:%s"\n' "$ADMIN_PORT" >>"$MAP"
"$BIN" check --config "$MAP" >"$LOGS/check.log" 2>&1 || { cat "$LOGS/check.log" >&2; die "vertogw check rejected the map"; }

export RUST_LOG=warn,vertogw::commands::signals=info

wait_port_free "$NODE_PORT"
start_proc node "$BIN" sim-node --listen "127.0.0.1:$NODE_PORT" --name fs1 --users "$BENCH/users.toml"
wait_listen node "$LAST_PID" "$NODE_PORT"
wait_port_free "$GW_PORT"
wait_port_free "$ADMIN_PORT"
start_proc gateway "$BIN" serve --config "$MAP"
GW_PID=$LAST_PID
wait_listen gateway "$GW_PID" "$GW_PORT"

# ---------------------------------------------------------------- passes
rate_args=() LOAD_DESC="mode $MODE, $SESSIONS sessions, $DURATION s"
if [ "$MODE" = steady ]; then rate_args=(--rate "$RATE"); LOAD_DESC+=", $RATE requests/s each"; fi

bench() { # bench NAME LIMIT_S ARGS...: one generator run, its JSON report in $WORK/NAME.json
  local name=$1 limit=$2 pid rc=0; shift 2
  # In the background + wait, so that a signal to this script is handled at once.
  timeout --kill-after=10 "$limit" "$GEN" --url "wss://127.0.0.1:$GW_PORT/" --ca "$CERTS/ca.crt" \
    --sni localhost --domain "$DOMAIN" --payload "$PAYLOAD" --json "$@" \
    >"$WORK/$name.json" 2>"$LOGS/bench.$name.log" &
  pid=$!
  STARTED+=("$pid")
  wait "$pid" || rc=$?
  forget_pid "$pid"
  [ "$rc" = 0 ] || { tail -n 5 "$LOGS/bench.$name.log" >&2; die "$name: the generator exited with $rc (124: timed out after $limit s)"; }
  local logged_in
  logged_in=$(jq -r '.logged_in' "$WORK/$name.json")
  [ "$logged_in" = "$SESSIONS" ] ||
    { tail -n 5 "$LOGS/bench.$name.log" >&2; die "$name: $logged_in of $SESSIONS sessions logged in"; }
  jq -e '[.errors[]] | add == 0' "$WORK/$name.json" >/dev/null ||
    echo "warning: $name: errors $(jq -c .errors "$WORK/$name.json")" >&2
}

traced() { # traced NAME ARGS...: bench NAME with `strace -c -f` on the gateway around it
  local name=$1 spid i; shift
  start_proc "strace.$name" "$STRACE" -c -f -o "$WORK/$name.strace" -p "$GW_PID"
  spid=$LAST_PID
  # strace says "Process N attached with K threads" once every thread is traced.
  for i in $(seq 1 100); do
    grep -q 'attached' "$LOGS/strace.$name.log" 2>/dev/null && break
    kill -0 "$spid" 2>/dev/null || { cat "$LOGS/strace.$name.log" >&2; die "strace exited before attaching"; }
    [ "$i" = 100 ] && { cat "$LOGS/strace.$name.log" >&2; die "strace did not attach within 10 s"; }
    sleep 0.1
  done
  bench "$name" "$PASS_LIMIT_S" "$@"
  sleep "$SETTLE_S"
  # SIGINT: strace detaches from every thread and writes its summary (bounded 10 s).
  kill -INT "$spid" 2>/dev/null || true
  for i in $(seq 1 100); do kill -0 "$spid" 2>/dev/null || break; sleep 0.1; done
  stop_pid "$spid"
  grep -q ' total$' "$WORK/$name.strace" || { cat "$LOGS/strace.$name.log" >&2; die "strace wrote no summary for $name"; }
}

net_counter() { # net_counter FILE PREFIX NAME: one counter of /proc/net/snmp or netstat
  awk -v p="$2:" -v name="$3" '
    $1 == p && !seen { for (i = 2; i <= NF; i++) col[$i] = i; seen = 1; next }
    $1 == p { print $col[name] }' "$1"
}

counters() { # utime stime (clock ticks), voluntary and involuntary switches of the
  # gateway, then the machine's TCP segments sent and pure ACKs received
  local stat
  stat=$(<"/proc/$GW_PID/stat")
  # Fields after the command name, which is in parentheses and may hold spaces.
  read -r -a f <<<"${stat##*) }"
  printf '%s %s ' "${f[11]}" "${f[12]}"
  cat /proc/"$GW_PID"/task/*/status |
    awk '/^voluntary_ctxt_switches/ { v += $2 } /^nonvoluntary_ctxt_switches/ { n += $2 } END { printf "%d %d ", v, n }'
  echo "$(net_counter /proc/net/snmp Tcp OutSegs) $(net_counter /proc/net/netstat TcpExt TCPPureAcks)"
}

metered() { # metered NAME ARGS...: bench NAME with the gateway's counters read around it
  local name=$1 before; shift
  before=$(counters)
  bench "$name" "$PASS_LIMIT_S" "$@"
  sleep "$SETTLE_S"
  echo "$before $(counters)" >"$WORK/$name.cpu"
}

# An untraced run first: it checks the whole path (TLS, upgrade, login, echo through
# the node) and leaves the gateway warm, so that one-off costs (threads, buffers, the
# node connection pool if any) do not land in the traced passes.
say "warm-up: mode $MODE, $SESSIONS sessions, 1 s, untraced"
bench warmup 120 --mode "$MODE" --sessions "$SESSIONS" --duration 1 "${rate_args[@]}"

# Why two traced passes: the generator counts every round trip of a run, but cannot
# signal when its logins are done early enough to attach strace then (the load starts
# 50 ms after the last login, and attaching to every thread takes about that long). So
# strace is attached for a whole run (logins, load, closes), and for a second run that
# only logs the same sessions in and closes them (mode idle, 0.1 s hold); the second's
# counts are subtracted from the first's. What is left is the load's, divided by the
# replies it got. The login pass's share is printed so the subtraction's weight shows.
PASS=traced
[ "$CPU" = 1 ] && PASS=metered
say "$PASS pass 1: $SESSIONS sessions log in, idle 0.1 s, close"
"$PASS" login --mode idle --sessions "$SESSIONS" --hold 0.1
say "$PASS pass 2: $LOAD_DESC"
"$PASS" load --mode "$MODE" --sessions "$SESSIONS" --duration "$DURATION" "${rate_args[@]}"

# ---------------------------------------------------------------- result
RT=$(jq -r '.replies' "$WORK/load.json")
[ "$RT" -gt 0 ] || die "the load pass got no replies"

echo
echo "vertogw:     $BIN_SRC ($(sha256sum "$BIN" | cut -c1-12))"
echo "load:        $LOAD_DESC, $PAYLOAD-byte padding"
echo "round trips: $RT (replies of the traced load pass; its requests: $(jq -r .requests "$WORK/load.json"))"
if [ "$CPU" = 1 ]; then
  echo "note:        counters read around each whole pass (untraced); the login pass ($SESSIONS logins + closes) subtracted"
  echo
  # Each .cpu file: utime stime voluntary involuntary segments pure-ACKs, before then after.
  awk -v rt="$RT" -v hz="$(getconf CLK_TCK)" '
    { for (i = 1; i <= 6; i++) d[FNR == NR ? "login" : "load", i] = $(i + 6) - $i }
    END {
      split("user CPU us|kernel CPU us|voluntary switches|involuntary switches|TCP segments sent|pure ACKs", label, "|")
      printf "%-22s %12s %12s %14s\n", "per round trip", "load pass", "login pass", "per round trip"
      for (i = 1; i <= 6; i++) {
        scale = i <= 2 ? 1e6 / hz : 1
        printf "%-22s %12d %12d %14.3f\n", label[i], d["load", i], d["login", i], (d["load", i] - d["login", i]) * scale / rt
      }
      printf "%-22s %12s %12s %14.3f\n", "CPU us, total", "", "", (d["load", 1] + d["load", 2] - d["login", 1] - d["login", 2]) * 1e6 / hz / rt
      printf "\n(CPU in clock ticks of %d Hz: the load pass took %d)\n", hz, d["load", 1] + d["load", 2]
    }' "$WORK/login.cpu" "$WORK/load.cpu"
  echo
  echo "---- generator report, load pass"
  cat "$WORK/load.json"
  echo
  say "done"
  exit 0
fi
echo "note:        strace attached for the whole of each pass; the login pass ($SESSIONS logins + closes) subtracted"
echo
# strace -c rows are: % time, seconds, usecs/call, calls, [errors,] syscall; the errors
# column is blank when none failed, so calls are field 4 and the name the last field.
awk -v rt="$RT" -v min="$MIN_PER_RT" '
  function row() { return NF >= 5 && $1 ~ /^[0-9.]+$/ && $4 ~ /^[0-9]+$/ }
  FNR == NR { if (row()) login[$NF] = $4; next }
  row() { load[$NF] = $4 }
  END {
    printf "%-16s %12s %12s %14s\n", "syscall", "load pass", "login pass", "per round trip"
    n = 0
    for (s in load) {
      if (s == "total") continue
      per = (load[s] - login[s]) / rt
      if (per >= min) { name[++n] = s; val[n] = per }
    }
    for (i = 2; i <= n; i++)   # insertion sort, largest first
      for (j = i; j > 1 && val[j] > val[j - 1]; j--) {
        t = val[j]; val[j] = val[j - 1]; val[j - 1] = t
        t = name[j]; name[j] = name[j - 1]; name[j - 1] = t
      }
    for (i = 1; i <= n; i++)
      printf "%-16s %12d %12d %14.3f\n", name[i], load[name[i]], login[name[i]], val[i]
    printf "%-16s %12d %12d %14.3f\n", "total", load["total"], login["total"], (load["total"] - login["total"]) / rt
    printf "\nlogin pass = %.1f %% of the load pass'"'"'s calls\n", 100 * login["total"] / load["total"]
  }' "$WORK/login.strace" "$WORK/load.strace"

echo
echo "---- strace -c -f -p <gateway>, login pass (mode idle, $SESSIONS sessions)"
cat "$WORK/login.strace"
echo "---- strace -c -f -p <gateway>, load pass"
cat "$WORK/load.strace"
echo "---- generator report, load pass"
cat "$WORK/load.json"
echo
say "done"
