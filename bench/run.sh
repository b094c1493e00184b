#!/usr/bin/env bash
# Benchmark orchestration: on this machine, in one run, compares four ways of serving
# browsers wss in front of the same simulated mod_verto node (plain ws):
#   direct   the generator straight to a node that terminates TLS itself
#   vertogw  vertogw serve
#   haproxy  HAProxy 2.6 (bench/haproxy.cfg.in)
#   nginx    nginx 1.22 (bench/nginx.conf.in)
#   baseline another vertogw build, same map (only with VERTOGW_BASELINE_BIN): a
#            before/after comparison in ONE interleaved run
# with the load generator `vertogw-bench`, for the scenarios of docs/performance.md.
#
# Usage: bench/run.sh [--quick] [--targets direct,vertogw,baseline,haproxy,nginx]
#                     [--scenarios steady,throughput,idle,storm,large] [--reps N]
#                     [--out DIR] [--no-publish] [--check] [--dry-run]
#
# Every process is started here, in the foreground, on 127.0.0.1 only, with private
# configs/pid files/logs under a temp dir, and stopped by its PID (trap on EXIT).
# Nothing else on the machine is stopped or reconfigured. See docs/performance.md.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH="$ROOT/bench"
# shellcheck source=bench/lib.sh
source "$BENCH/lib.sh"

usage() {
  sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
  cat <<'EOF'

Options:
  --quick          1 repetition, shorter runs, smaller counts (a smoke run, ~3 min)
  --targets LIST   comma-separated subset of direct,vertogw,baseline,haproxy,nginx
                   (default: all; baseline only with VERTOGW_BASELINE_BIN)
  --scenarios LIST comma-separated subset of steady,throughput,idle,storm,large
                   (large: every session relays one 999,999-byte echo each way, 16 at
                   a time, then idles; reports the proxy memory each session still
                   holds afterwards, next to what an idle session costs)
  --reps N         repetitions (default 3, --quick 1); the summary shows medians
  --out DIR        where raw JSON and logs go (default: bench/results/<stamp>/ for a
                   full run, bench/results/<stamp>-quick/ for --quick)
  --no-publish     a full run does not write docs/bench-results/<stamp>.jsonl and
                   <stamp>.md nor fill the tables of docs/performance.md
  --check          no load: validate the configs, bring every target up, probe it
                   (TLS + upgrade + Verto login + echo), stop it
  --dry-run        print the generator commands the run would execute, run nothing
Environment:
  VERTOGW_BIN      the vertogw binary (default target/release/vertogw)
  VERTOGW_BASELINE_BIN  another vertogw binary (e.g. a build of the previous commit):
                   adds the target `baseline`, the same map on its own port, run
                   interleaved with the others and shown next to vertogw
  BENCH_BIN        the load generator (default target/release/vertogw-bench)
  BENCH_PORT_BASE  ports used: BASE+81 node, +90 the admin API, +441 direct, +443 vertogw, +444 haproxy,
                   +445 nginx, +446 baseline (default 28000)
  BENCH_MAX_MINUTES  stop starting new runs after this many minutes (default 30)
  BENCH_KEEP_TMP=1 keep the temp dir (rendered configs, certificates)
  BENCH_HAPROXY, BENCH_NGINX  the haproxy / nginx binaries (default: from PATH, /usr/sbin)
  BENCH_NO_INSTALL=1  never apt-get install a missing haproxy/nginx, even as root
EOF
}

# ---------------------------------------------------------------- options
QUICK=0 CHECK=0 DRY=0 PUBLISH=1 REPS="" OUT=""
BASE_BIN=${VERTOGW_BASELINE_BIN:-}
TARGETS="direct,vertogw,haproxy,nginx"
# With a baseline binary the default run compares it too, right after vertogw.
[ -z "$BASE_BIN" ] || TARGETS="direct,vertogw,baseline,haproxy,nginx"
SCENARIOS="steady,throughput,idle,storm,large"
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --check) CHECK=1 ;;
    --dry-run) DRY=1 ;;
    --no-publish) PUBLISH=0 ;;
    --targets) TARGETS=${2:?--targets needs a list}; shift ;;
    --scenarios) SCENARIOS=${2:?--scenarios needs a list}; shift ;;
    --reps) REPS=${2:?--reps needs a number}; shift ;;
    --out) OUT=${2:?--out needs a directory}; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "error: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
for t in ${TARGETS//,/ }; do
  case "$t" in direct|vertogw|haproxy|nginx) ;;
    baseline) [ -n "$BASE_BIN" ] || { echo "error: target baseline needs VERTOGW_BASELINE_BIN=/path/to/vertogw" >&2; exit 2; } ;;
    *) echo "error: unknown target $t" >&2; exit 2 ;;
  esac
done
for s in ${SCENARIOS//,/ }; do
  case "$s" in steady|throughput|idle|storm|large) ;; *) echo "error: unknown scenario $s" >&2; exit 2 ;; esac
done
if [ -n "$REPS" ] && ! [[ "$REPS" =~ ^[1-9][0-9]?$ ]]; then
  echo "error: --reps must be 1-99" >&2; exit 2
fi

# ---------------------------------------------------------------- parameters
# Full run (the issue's numbers) and --quick (a smoke run of the same code paths).
if [ "$QUICK" = 1 ]; then
  REPS=${REPS:-1}
  STEADY_SESSIONS=200  STEADY_RATE=10 STEADY_S=5
  TP_SESSIONS=16       TP_S=4
  IDLE_COUNTS="200 1000" IDLE_HOLD_S=2
  STORM_SESSIONS=500   BG_SESSIONS=200 BG_RATE=10
  LARGE_SESSIONS=100   LARGE_HOLD_S=2
else
  REPS=${REPS:-3}
  STEADY_SESSIONS=1000 STEADY_RATE=10 STEADY_S=15
  TP_SESSIONS=64       TP_S=10
  IDLE_COUNTS="2000 9000" IDLE_HOLD_S=5
  STORM_SESSIONS=5000  BG_SESSIONS=1000 BG_RATE=10
  LARGE_SESSIONS=1000  LARGE_HOLD_S=10
fi
# large: the generator's defaults: 999,999-byte requests (the message limit of mod_verto
# and of vertogw's browser side), at most 16 of them in flight at once.
PAYLOAD=200
DOMAIN=bench.test
MAX_MINUTES=${BENCH_MAX_MINUTES:-30}

BIN=${VERTOGW_BIN:-$ROOT/target/release/vertogw}
GEN=${BENCH_BIN:-$ROOT/target/release/vertogw-bench}
PORT_BASE=${BENCH_PORT_BASE:-28000}
NODE_PORT=$((PORT_BASE + 81))
declare -A PORT=(
  [direct]=$((PORT_BASE + 441)) [vertogw]=$((PORT_BASE + 443))
  [haproxy]=$((PORT_BASE + 444)) [nginx]=$((PORT_BASE + 445)) [baseline]=$((PORT_BASE + 446))
)
HAPROXY=${BENCH_HAPROXY:-$(command -v haproxy || echo /usr/sbin/haproxy)}
NGINX=${BENCH_NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}

STAMP=$(date -u +%Y-%m-%dT%H%MZ)
T0=$(date +%s)
loud() {
  printf '\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n' >&2
  printf '!!! %s\n' "$@" >&2
  printf '!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\n' >&2
}

# Sessions need sockets: children inherit the hard limit (20,000 on the bench machine).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# ---------------------------------------------------------------- processes
# Everything started here is recorded in STARTED and stopped by PID, nothing else.
STARTED=()
LAST_PID=""
WORK=$(mktemp -d "${TMPDIR:-/tmp}/vgwbench.XXXXXX")
LOGS="$WORK/logs"
mkdir -p "$LOGS"

RUN_TAG=""    # appended to log names: one log per process per run
children_of() { ps -o pid= --ppid "$1" 2>/dev/null | tr -d ' ' || true; }

stop_tree() { # stop_tree PID COMM: the process, then any child named COMM it left behind
  local pid=$1 comm=$2 kids k
  kids=$(children_of "$pid")
  stop_pid "$pid"
  for k in $kids; do
    if [ "$(cat "/proc/$k/comm" 2>/dev/null)" = "$comm" ]; then
      kill -KILL "$k" 2>/dev/null || true
    fi
  done
}

RESULTS=""   # set below; logs are copied there on exit
cleanup() {
  local rc=$? i
  trap - EXIT INT TERM
  for ((i = ${#STARTED[@]} - 1; i >= 0; i--)); do
    stop_tree "${STARTED[$i]}" "$(cat "/proc/${STARTED[$i]}/comm" 2>/dev/null || echo '?')"
  done
  if [ -n "$RESULTS" ] && [ -d "$LOGS" ]; then
    mkdir -p "$LOG_DIR" && cp -r "$LOGS"/. "$LOG_DIR"/ 2>/dev/null || true
  fi
  if [ "${BENCH_KEEP_TMP:-0}" = 1 ]; then echo "temp dir kept: $WORK"; else rm -rf "$WORK"; fi
  say "total time: $(elapsed) s"
  exit "$rc"
}
trap cleanup EXIT
trap 'echo "interrupted" >&2; exit 130' INT TERM

# ---------------------------------------------------------------- tools
is_root() { [ "$(id -u)" = 0 ]; }

ensure_tool() { # ensure_tool TARGET BINARY PACKAGE: installs when root and missing
  local target=$1 bin=$2 pkg=$3
  [ -x "$bin" ] && return 0
  if is_root && [ "${BENCH_NO_INSTALL:-0}" != 1 ] && command -v apt-get >/dev/null 2>&1; then
    say "$pkg missing: apt-get install $pkg"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >"$LOGS/apt-$pkg.log" 2>&1 ||
      { apt-get update -qq >>"$LOGS/apt-$pkg.log" 2>&1 &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >>"$LOGS/apt-$pkg.log" 2>&1; } || true
    [ -x "$bin" ] || bin=$(command -v "$(basename "$bin")" || echo "$bin")
    [ -x "$bin" ] && return 0
  fi
  loud "target '$target' SKIPPED: $pkg is not installed and could not be installed" \
       "(run as root with apt-get, or: apt-get install $pkg)"
  return 1
}

SELECTED=()
for t in ${TARGETS//,/ }; do
  case "$t" in
    haproxy) ensure_tool haproxy "$HAPROXY" haproxy || continue
             [ -x "$HAPROXY" ] || HAPROXY=$(command -v haproxy) ;;
    nginx) ensure_tool nginx "$NGINX" nginx || continue
           [ -x "$NGINX" ] || NGINX=$(command -v nginx) ;;
  esac
  SELECTED+=("$t")
done

[ -x "$BIN" ] || die "$BIN not found: build it first (cargo build --release --workspace)"
[ -x "$GEN" ] || die "$GEN not found: build it first (cargo build --release --workspace)"
# One copy of each binary for the whole run, even if cargo rebuilds target/release meanwhile.
cp "$BIN" "$WORK/vgw" && BIN_SRC=$BIN && BIN="$WORK/vgw"
cp "$GEN" "$WORK/vgw-bench" && GEN="$WORK/vgw-bench"
if [[ " ${SELECTED[*]} " == *" baseline "* ]]; then
  [ -x "$BASE_BIN" ] || die "VERTOGW_BASELINE_BIN=$BASE_BIN is not an executable"
  cp "$BASE_BIN" "$WORK/vgw-baseline" && BASE_BIN_SRC=$BASE_BIN && BASE_BIN="$WORK/vgw-baseline"
fi
command -v openssl >/dev/null || die "openssl is needed to generate the test certificate"
command -v python3 >/dev/null || die "python3 is needed for the probe and the summary"
if [[ " ${SELECTED[*]} " == *" direct "* ]] && ! "$BIN" sim-node --help 2>&1 | grep -q -- '--tls-cert'; then
  loud "target 'direct' SKIPPED: this vertogw's sim-node has no --tls-cert (cannot serve wss)"
  kept=(); for t in "${SELECTED[@]}"; do [ "$t" = direct ] || kept+=("$t"); done; SELECTED=("${kept[@]}")
fi
[ ${#SELECTED[@]} -gt 0 ] || die "no target left to run"

# ---------------------------------------------------------------- certificate + configs
CERTS="$WORK/certs"
render() { # render TEMPLATE OUT PORT: fills @@...@@
  sed -e "s|@@LISTEN_PORT@@|$3|g" -e "s|@@NODE_PORT@@|$NODE_PORT|g" \
      -e "s|@@PEM@@|$CERTS/server.pem|g" -e "s|@@CERT@@|$CERTS/server.crt|g" \
      -e "s|@@KEY@@|$CERTS/server.key|g" -e "s|@@PREFIX@@|$WORK/nginx|g" "$1" >"$2"
}

make_configs() {
  render "$BENCH/gateway.toml.in" "$WORK/gateway.toml" "${PORT[vertogw]}"
  # The admin API off the default 9090, so a run never collides with a gateway on this
  # machine; the baseline may predate [admin] and keeps the map without it.
  printf '\n[admin]\nlisten = "127.0.0.1:%s"\n' "$((PORT_BASE + 90))" >>"$WORK/gateway.toml"
  render "$BENCH/gateway.toml.in" "$WORK/gateway-baseline.toml" "${PORT[baseline]}"
  render "$BENCH/haproxy.cfg.in" "$WORK/haproxy.cfg" "${PORT[haproxy]}"
  mkdir -p "$WORK/nginx"
  render "$BENCH/nginx.conf.in" "$WORK/nginx/nginx.conf" "${PORT[nginx]}"
  local t
  for t in "${SELECTED[@]}"; do
    case "$t" in
      vertogw) "$BIN" check --config "$WORK/gateway.toml" >"$LOGS/check-vertogw.log" 2>&1 ||
                 { cat "$LOGS/check-vertogw.log" >&2; die "vertogw check rejected the bench map"; } ;;
      baseline) "$BASE_BIN" check --config "$WORK/gateway-baseline.toml" >"$LOGS/check-baseline.log" 2>&1 ||
                 { cat "$LOGS/check-baseline.log" >&2; die "the baseline's check rejected the bench map"; } ;;
      haproxy) "$HAPROXY" -c -f "$WORK/haproxy.cfg" >"$LOGS/check-haproxy.log" 2>&1 ||
                 { cat "$LOGS/check-haproxy.log" >&2; die "haproxy -c rejected the bench config"; } ;;
      nginx) "$NGINX" -t -p "$WORK/nginx" -e "$WORK/nginx/error.log" -c "$WORK/nginx/nginx.conf" \
               >"$LOGS/check-nginx.log" 2>&1 ||
               { cat "$LOGS/check-nginx.log" >&2; die "nginx -t rejected the bench config"; } ;;
    esac
  done
}

# ---------------------------------------------------------------- one target's stack
# stack_up TARGET: fresh node (+ proxy), health-checked. Sets PROXY_PIDS (what the
# scenario measures: the proxy, or for direct the TLS node) and NODE_PIDS (the plain
# node behind a proxy). Every run gets a fresh stack, so memory numbers start clean.
PROXY_PIDS=() NODE_PIDS=() STACK_PIDS=()
# Warnings only, plus the line saying which signal stopped a process (so a process
# stopped from outside the script is visible in its log).
export RUST_LOG=warn,vertogw::commands::signals=info

stack_up() {
  local t=$1 port=${PORT[$1]} node_pid proxy_pid
  PROXY_PIDS=() NODE_PIDS=() STACK_PIDS=()
  wait_port_free "$port" || return 1
  if [ "$t" = direct ]; then
    start_proc node-direct "$BIN" sim-node --listen "127.0.0.1:$port" --name fs1 \
      --users "$BENCH/users.toml" --tls-cert "$CERTS/server.crt" --tls-key "$CERTS/server.key"
    PROXY_PIDS=("$LAST_PID") STACK_PIDS=("$LAST_PID")
    wait_listen node-direct "$LAST_PID" "$port" || return 1
  else
    wait_port_free "$NODE_PORT" || return 1
    start_proc node "$BIN" sim-node --listen "127.0.0.1:$NODE_PORT" --name fs1 --users "$BENCH/users.toml"
    node_pid=$LAST_PID NODE_PIDS=("$LAST_PID") STACK_PIDS=("$LAST_PID")
    wait_listen node "$node_pid" "$NODE_PORT" || return 1
    case "$t" in
      vertogw) start_proc vertogw "$BIN" serve --config "$WORK/gateway.toml" ;;
      baseline) start_proc baseline "$BASE_BIN" serve --config "$WORK/gateway-baseline.toml" ;;
      haproxy) start_proc haproxy "$HAPROXY" -f "$WORK/haproxy.cfg" -db ;;
      nginx) start_proc nginx "$NGINX" -p "$WORK/nginx" -e "$WORK/nginx/error.log" \
               -c "$WORK/nginx/nginx.conf" -g 'daemon off;' ;;
    esac
    proxy_pid=$LAST_PID STACK_PIDS+=("$proxy_pid")
    wait_listen "$t" "$proxy_pid" "$port" || return 1
    if [ "$t" = nginx ]; then
      local i kids
      for i in $(seq 1 50); do # bounded 5 s: both workers forked
        kids=$(children_of "$proxy_pid")
        [ "$(echo "$kids" | grep -c .)" -ge 2 ] && break
        sleep 0.1
      done
      read -r -a PROXY_PIDS <<<"$(echo $kids)"
      [ ${#PROXY_PIDS[@]} -ge 2 ] || { echo "error: nginx has ${#PROXY_PIDS[@]} workers, expected 2" >&2; return 1; }
    else
      PROXY_PIDS=("$proxy_pid")
    fi
  fi
  python3 "$BENCH/wss_probe.py" --port "$port" --ca "$CERTS/ca.crt" --timeout 10 \
    >>"$LOGS/probe.log" 2>&1 || { echo "error: $t does not answer wss + Verto login:" >&2; tail -n 3 "$LOGS/probe.log" >&2; return 1; }
}

stack_down() {
  local i
  for ((i = ${#STACK_PIDS[@]} - 1; i >= 0; i--)); do
    stop_tree "${STACK_PIDS[$i]}" "$(cat "/proc/${STACK_PIDS[$i]}/comm" 2>/dev/null || echo '?')"
  done
  PROXY_PIDS=() NODE_PIDS=() STACK_PIDS=()
  if [ -s "$WORK/nginx/error.log" ]; then # nginx logs to its prefix; keep it with the rest
    cat "$WORK/nginx/error.log" >>"$LOGS/nginx-error.log"
    : >"$WORK/nginx/error.log"
  fi
}

# ---------------------------------------------------------------- runs
# RUNS: "variant|timeout_s|generator args" — one line per measured run.
RUNS=()
for s in ${SCENARIOS//,/ }; do
  case "$s" in
    steady) RUNS+=("steady|$((STEADY_S + 90))|--mode steady --sessions $STEADY_SESSIONS --rate $STEADY_RATE --duration $STEADY_S --payload $PAYLOAD") ;;
    throughput) RUNS+=("throughput|$((TP_S + 90))|--mode throughput --sessions $TP_SESSIONS --duration $TP_S --payload $PAYLOAD") ;;
    idle) for n in $IDLE_COUNTS; do RUNS+=("idle-$n|$((IDLE_HOLD_S + 120))|--mode idle --sessions $n --hold $IDLE_HOLD_S"); done ;;
    storm) RUNS+=("storm|120|--mode storm --sessions $STORM_SESSIONS")
           RUNS+=("storm-load|150|--mode storm --sessions $STORM_SESSIONS --background-sessions $BG_SESSIONS --background-rate $BG_RATE --payload $PAYLOAD") ;;
    large) RUNS+=("large|$((LARGE_HOLD_S + 240))|--mode large --sessions $LARGE_SESSIONS --hold $LARGE_HOLD_S") ;;
  esac
done

tcpext() { # tcpext NAME: a system-wide TcpExt counter from /proc/net/netstat
  awk -v k="$1" '/^TcpExt:/ { if (!h) { for (i = 1; i <= NF; i++) n[i] = $i; h = 1 }
    else for (i = 1; i <= NF; i++) if (n[i] == k) print $i }' /proc/net/netstat 2>/dev/null || echo 0
}

json_str() { local s=${1//\\/\\\\}; s=${s//\"/\\\"}; printf '"%s"' "$s"; }
json_ints() { local IFS=,; printf '[%s]' "$*"; }

FAILED=()
run_one() { # run_one REP VARIANT TIMEOUT TARGET ARGS...
  local rep=$1 variant=$2 limit=$3 t=$4; shift 4
  local base="$RAW/$variant.$t.r$rep" watch=() p rc=0 t_start t_end
  for p in "${PROXY_PIDS[@]}" "${NODE_PIDS[@]}"; do watch+=(--watch-pid "$p"); done
  local cmd=("$GEN" --url "wss://127.0.0.1:${PORT[$t]}/" --ca "$CERTS/ca.crt" --sni localhost
             --domain "$DOMAIN" --json "$@" "${watch[@]}")
  local ovf0 ovf1
  ovf0=$(tcpext ListenOverflows)
  t_start=$(date +%s.%N)
  # In the background + wait, so that a signal to this script is handled at once.
  timeout --kill-after=10 "$limit" "${cmd[@]}" >"$base.json" 2>"$LOGS/bench.$variant.$t.r$rep.log" &
  local gen=$!
  STARTED+=("$gen")
  wait "$gen" || rc=$?
  stop_pid "$gen"
  t_end=$(date +%s.%N)
  ovf1=$(tcpext ListenOverflows)
  local alive=true
  for p in "${STACK_PIDS[@]}"; do kill -0 "$p" 2>/dev/null || alive=false; done
  if [ "$alive" = false ]; then # a node or proxy died (or was killed) mid-run: not a result
    FAILED+=("$variant/$t/r$rep: a process of the stack exited during the run")
    say "  $variant $t r$rep: a process of the stack exited during the run; see $LOG_DIR"
    [ "$rc" != 0 ] || rc=250
  fi
  {
    printf '{"target":%s,"variant":%s,"rep":%s,"exit_code":%s,' "$(json_str "$t")" "$(json_str "$variant")" "$rep" "$rc"
    printf '"wall_s":%s,"proxy_pids":%s,"node_pids":%s,' "$(awk "BEGIN { printf \"%.2f\", $t_end - $t_start }")" \
      "$(json_ints "${PROXY_PIDS[@]}")" "$(json_ints "${NODE_PIDS[@]}")"
    printf '"listen_overflows":%s,"stack_alive":%s,"proxy_role":%s,"command":%s}\n' \
      "$(( ${ovf1:-0} - ${ovf0:-0} ))" "$alive" \
      "$(json_str "$([ "$t" = direct ] && echo tls-node || echo proxy)")" "$(json_str "${cmd[*]}")"
  } >"$base.meta.json"
  if [ "$rc" = 250 ]; then
    :
  elif [ "$rc" != 0 ]; then
    FAILED+=("$variant/$t/r$rep: generator exit $rc")
    say "  $variant $t r$rep: generator exit $rc; stderr tail:"
    tail -n 5 "$LOGS/bench.$variant.$t.r$rep.log" | sed 's/^/      /' >&2 || true
  else
    say "  $variant $t r$rep: ok ($(python3 "$BENCH/summarise.py" --one-line "$base.json" 2>/dev/null || echo 'saved'))"
  fi
}

# ---------------------------------------------------------------- main
# Raw JSON and process logs of every run go to the git-ignored bench/results/; a full
# run then publishes docs/bench-results/<stamp>.jsonl (its raw JSON packed into one
# file) and <stamp>.md (the tables).
if [ "$CHECK" = 1 ]; then
  RESULTS=${OUT:-$BENCH/results/$STAMP-check} PUBLISH=0
elif [ "$QUICK" = 1 ]; then
  RESULTS=${OUT:-$BENCH/results/$STAMP-quick} PUBLISH=0
else
  RESULTS=${OUT:-$BENCH/results/$STAMP}
fi
RAW="$RESULTS"
LOG_DIR="$RESULTS/logs"

if [ "$DRY" = 1 ]; then
  RESULTS="" # nothing to keep
  say "dry run: targets ${SELECTED[*]}, $REPS rep(s)"
  for rep in $(seq 1 "$REPS"); do
    for r in "${RUNS[@]}"; do
      IFS='|' read -r variant limit args <<<"$r"
      for t in "${SELECTED[@]}"; do
        echo "r$rep $variant $t: timeout $limit $GEN --url wss://127.0.0.1:${PORT[$t]}/ --ca CA --sni localhost --domain $DOMAIN --json $args --watch-pid ..."
      done
    done
  done
  exit 0
fi

mkdir -p "$RAW"
make_certs "$CERTS" "$LOGS/openssl.log" "vertogw bench CA"
make_configs

{
  echo "stamp=$STAMP"
  echo "quick=$QUICK"
  echo "reps=$REPS"
  echo "targets=${SELECTED[*]}"
  echo "nproc=$(nproc)"
  echo "cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  echo "ram=$(free -g | awk '/^Mem:/ {print $2 " GiB"}')"
  echo "kernel=$(uname -sr)"
  echo "os=$(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")"
  echo "nofile=$(ulimit -n)"
  echo "somaxconn=$(cat /proc/sys/net/core/somaxconn 2>/dev/null)"
  echo "vertogw=$("$BIN" --version 2>/dev/null | sed 's/^[^ ]* //') ($BIN_SRC) $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo '+dirty')"
  if [ -n "${BASE_BIN_SRC:-}" ]; then
    echo "baseline=$("$BASE_BIN" --version 2>/dev/null | sed 's/^[^ ]* //') ($BASE_BIN_SRC)"
  fi
  echo "haproxy=$("$HAPROXY" -v 2>/dev/null | head -n1 | cut -d' ' -f3 || true)"
  echo "nginx=$("$NGINX" -v 2>&1 | sed 's|.*nginx/||' || true)"
  echo "openssl=$(openssl version)"
  echo "params=steady ${STEADY_SESSIONS}x${STEADY_RATE}/s ${STEADY_S}s; throughput ${TP_SESSIONS} ${TP_S}s; idle ${IDLE_COUNTS// /,} hold ${IDLE_HOLD_S}s; storm ${STORM_SESSIONS}; storm-load ${BG_SESSIONS}x${BG_RATE}/s + ${STORM_SESSIONS}; payload ${PAYLOAD} B; large ${LARGE_SESSIONS} x 999,999 B each way, hold ${LARGE_HOLD_S}s"
  echo "command=bench/run.sh $([ "$QUICK" = 1 ] && echo --quick) --targets $(IFS=,; echo "${SELECTED[*]}") --scenarios $SCENARIOS --reps $REPS"
} >"$RAW/env.txt"

say "vertogw bench: targets ${SELECTED[*]}; scenarios $SCENARIOS; $REPS rep(s); results in $RAW"

if [ "$CHECK" = 1 ]; then
  for t in "${SELECTED[@]}"; do
    RUN_TAG=".check"
    if stack_up "$t"; then
      say "$t: up on 127.0.0.1:${PORT[$t]} (measured pids ${PROXY_PIDS[*]}; node ${NODE_PIDS[*]:-—}); $(tail -n1 "$LOGS/probe.log")"
    else
      FAILED+=("$t: did not come up")
    fi
    stack_down
  done
else
  for rep in $(seq 1 "$REPS"); do
    for r in "${RUNS[@]}"; do
      IFS='|' read -r variant limit args <<<"$r"
      for t in "${SELECTED[@]}"; do
        if [ "$(elapsed)" -gt $((MAX_MINUTES * 60)) ]; then
          loud "over BENCH_MAX_MINUTES=$MAX_MINUTES: skipping the remaining runs"
          FAILED+=("time budget exhausted at r$rep $variant $t")
          break 3
        fi
        RUN_TAG=".$variant.$t.r$rep"
        if ! stack_up "$t"; then
          FAILED+=("$variant/$t/r$rep: target did not come up")
          stack_down
          continue
        fi
        # shellcheck disable=SC2086 # args is a flag list
        run_one "$rep" "$variant" "$limit" "$t" $args
        stack_down
      done
    done
  done
  SUMMARY="$RAW/summary.md"
  python3 "$BENCH/summarise.py" "$RAW" >"$SUMMARY" || FAILED+=("summariser failed")
  echo
  cat "$SUMMARY"
  if [ "$PUBLISH" = 1 ]; then
    # One packed file instead of the raw files; its tables must match the raw ones.
    PUB="$ROOT/docs/bench-results/$STAMP"
    mkdir -p "$ROOT/docs/bench-results"
    if python3 "$BENCH/summarise.py" --pack "$RAW" "$PUB.jsonl" &&
       python3 "$BENCH/summarise.py" "$PUB.jsonl" >"$PUB.md" && cmp -s "$SUMMARY" "$PUB.md"; then
      python3 "$BENCH/summarise.py" "$PUB.jsonl" --fill "$ROOT/docs/performance.md" ||
        FAILED+=("could not fill docs/performance.md")
      say "published docs/bench-results/$STAMP.jsonl, $STAMP.md and the tables of docs/performance.md"
    else
      FAILED+=("could not publish docs/bench-results/$STAMP.jsonl and .md (raw results stay in $RAW)")
    fi
  fi
fi

if [ ${#FAILED[@]} -gt 0 ]; then
  loud "${#FAILED[@]} problem(s):" "${FAILED[@]}"
  exit 1
fi
say "done; raw JSON in $RAW, logs in $LOG_DIR"
