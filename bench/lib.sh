# Shell helpers shared by bench/run.sh and bench/failover.sh (sourced, never run):
# progress lines, stopping the processes they started, and bounded waits on 127.0.0.1
# ports. The callers set T0 (start time, s), STARTED (the PIDs they started), LOGS
# (where each process NAME logs to NAME$RUN_TAG.log) and optionally RUN_TAG.

elapsed() { echo $(( $(date +%s) - T0 )); }
say() { printf '[%4ss] %s\n' "$(elapsed)" "$*"; }
die() { echo "error: $*" >&2; exit 1; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port_free() { # bounded: 5 s
  local port=$1 i
  for i in $(seq 1 50); do port_open "$port" || return 0; sleep 0.1; done
  echo "error: something else listens on 127.0.0.1:$port:" >&2
  ss -ltnp "sport = :$port" >&2 || true
  return 1
}

wait_listen() { # wait_listen NAME PID PORT: bounded 10 s; fails if the process dies
  local name=$1 pid=$2 port=$3 i
  for i in $(seq 1 100); do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "error: $name (pid $pid) exited before listening on $port; its log:" >&2
      tail -n 20 "$LOGS/$name${RUN_TAG:-}.log" >&2 || true
      return 1
    fi
    port_open "$port" && return 0
    sleep 0.1
  done
  echo "error: $name (pid $pid) is not listening on 127.0.0.1:$port after 10 s; its log:" >&2
  tail -n 20 "$LOGS/$name${RUN_TAG:-}.log" >&2 || true
  return 1
}

forget_pid() {
  local kept=() p
  for p in "${STARTED[@]}"; do [ "$p" = "$1" ] || kept+=("$p"); done
  STARTED=("${kept[@]}")
}

stop_pid() { # CONT (a stopped node cannot act on TERM), TERM, after 3 s TERM, after 5 s KILL
  local pid=$1 i
  if kill -0 "$pid" 2>/dev/null; then
    kill -CONT "$pid" 2>/dev/null || true
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      [ "$i" = 30 ] && kill -TERM "$pid" 2>/dev/null
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      echo "warning: pid $pid ignored SIGTERM twice in 5 s; SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  wait "$pid" 2>/dev/null || true
  forget_pid "$pid"
}

make_certs() { # make_certs DIR LOG NAME: an ECDSA P-256 CA "NAME" and a leaf for
  # localhost/127.0.0.1 signed by it (ca.crt, server.crt, server.key, server.pem)
  mkdir -p "$1"
  (
    cd "$1"
    openssl ecparam -name prime256v1 -genkey -noout -out ca.key
    openssl req -x509 -new -key ca.key -sha256 -days 2 -subj "/CN=$3" -out ca.crt
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -keyout server.key -subj "/CN=localhost" -out server.csr
    printf '%s\n' "subjectAltName=DNS:localhost,IP:127.0.0.1" "basicConstraints=CA:FALSE" \
      "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" >server.ext
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
      -sha256 -extfile server.ext -out server.crt
    cat server.crt server.key >server.pem
  ) >"$2" 2>&1 || { cat "$2" >&2; die "certificate generation failed"; }
}

start_proc() { # start_proc NAME CMD...: in the background, output appended to
  # $LOGS/NAME${RUN_TAG}.log; its PID goes to LAST_PID and STARTED (stopped on exit)
  local name=$1; shift
  "$@" >>"$LOGS/$name${RUN_TAG:-}.log" 2>&1 &
  LAST_PID=$!
  STARTED+=("$LAST_PID")
}
