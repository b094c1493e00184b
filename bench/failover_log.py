#!/usr/bin/env python3
"""Helpers of bench/failover.sh: read the gateway's JSON log, summarise runs. Stdlib only.

    failover_log.py lines LOG                      # lines in LOG now (0 when missing)
    failover_log.py wait LOG --node A1 --to down --after-line N --timeout S
        # waits (polling, bounded by S seconds) for the gateway's WARN line
        # "health: node state changed" for node A1 with to=down (or the INFO line
        # "health: initial state" with state=down), past line N; prints
        # "<unix seconds of its timestamp> <line number>"; exit 1 on timeout
    failover_log.py stats --label L V...           # "L: n N, median X ms, max Y ms, all: ..."
    failover_log.py report RUN.json                # the failover report in a few lines

The gateway runs with --log-format json: one object per line, "timestamp" in RFC 3339
with microseconds (tracing-subscriber's system clock: the same wall clock as the
script's $EPOCHREALTIME when the signal went out).
"""
import argparse
import datetime
import json
import statistics
import sys
import time

TRANSITION = "health: node state changed"
# At start-up the first probe decides a node's state, logged (INFO) as this instead.
INITIAL = "health: initial state"


def parse_ts(text):
    """RFC 3339 ('2026-01-02T03:04:05.123456Z') → Unix seconds (float), or None."""
    if not isinstance(text, str):
        return None
    t = text.strip()
    if t.endswith("Z"):
        t = t[:-1] + "+00:00"
    # fromisoformat takes at most 6 fraction digits; tracing may print up to 9.
    if "." in t:
        head, rest = t.split(".", 1)
        digits = ""
        while rest and rest[0].isdigit():
            digits, rest = digits + rest[0], rest[1:]
        t = f"{head}.{(digits + '000000')[:6]}{rest}"
    try:
        return datetime.datetime.fromisoformat(t).timestamp()
    except ValueError:
        return None


def transition(line, node, to):
    """The timestamp of `line` when it is the transition of `node` to `to`, else None."""
    try:
        rec = json.loads(line)
    except ValueError:
        return None
    fields = rec.get("fields", {}) if isinstance(rec, dict) else {}
    state = {TRANSITION: fields.get("to"), INITIAL: fields.get("state")}.get(fields.get("message"))
    if fields.get("node") != node or state != to:
        return None
    return parse_ts(rec.get("timestamp"))


def count_lines(path):
    try:
        with open(path, "rb") as f:
            return sum(1 for _ in f)
    except FileNotFoundError:
        return 0


def wait(path, node, to, after, timeout):
    deadline = time.monotonic() + timeout
    while True:
        try:
            with open(path, errors="replace") as f:
                for n, line in enumerate(f, 1):
                    if n <= after or not line.endswith("\n"):
                        continue
                    ts = transition(line, node, to)
                    if ts is not None:
                        print(f"{ts:.6f} {n}")
                        return 0
        except FileNotFoundError:
            pass
        if time.monotonic() >= deadline:
            print(f"no '{TRANSITION}' to {to} for {node} in {path} within {timeout} s", file=sys.stderr)
            return 1
        time.sleep(0.05)


def stats(label, values):
    vals = [float(v) for v in values]
    if not vals:
        print(f"{label}: no runs")
        return 1
    listed = ", ".join(f"{v:.0f}" for v in vals)
    print(f"{label}: n {len(vals)}, median {statistics.median(vals):.0f} ms, "
          f"min {min(vals):.0f} ms, max {max(vals):.0f} ms (all: {listed})")
    return 0


def ms(v):
    return "—" if v is None else f"{v:,.0f} ms"


def report(path):
    with open(path) as f:
        r = json.load(f)
    fo = r.get("failover") or {}
    bg = r.get("background_rtt_us") or {}
    codes = ", ".join(f"{k} ×{v}" for k, v in (fo.get("close_codes") or {}).items()) or "none"
    err = {k: v for k, v in (r.get("errors") or {}).items() if v}
    print(f"  signal SIG{str(fo.get('signal', '?')).upper()}: {fo.get('closed_sessions')} of "
          f"{fo.get('expected')} sessions closed ({codes}); first close {ms(fo.get('first_close_ms'))}, "
          f"last close {ms(fo.get('last_close_ms'))}")
    print(f"  back: {fo.get('back_sessions')} of {fo.get('expected')}, all logged in again after "
          f"{ms(fo.get('all_back_ms'))}; failed reconnect attempts {fo.get('reconnect_failures')}")
    print(f"  logins per node: before {fo.get('initial_nodes')}, after {fo.get('relogin_nodes')}")
    if bg:
        print(f"  background RTT during [signal, all back]: p50 {bg['p50'] / 1000:.2f} ms, "
              f"p99 {bg['p99'] / 1000:.2f} ms, max {bg['max'] / 1000:.2f} ms (n {bg['count']})")
    else:
        print("  background RTT: no sample in the window")
    print(f"  errors: {err or 'none'}")
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    lines = sub.add_parser("lines")
    lines.add_argument("log")
    w = sub.add_parser("wait")
    w.add_argument("log")
    w.add_argument("--node", required=True)
    w.add_argument("--to", required=True)
    w.add_argument("--after-line", type=int, default=0)
    w.add_argument("--timeout", type=float, required=True)
    s = sub.add_parser("stats")
    s.add_argument("--label", required=True)
    s.add_argument("values", nargs="*")
    r = sub.add_parser("report")
    r.add_argument("run")
    a = p.parse_args()
    if a.cmd == "lines":
        print(count_lines(a.log))
        return 0
    if a.cmd == "wait":
        return wait(a.log, a.node, a.to, a.after_line, min(a.timeout, 600))
    if a.cmd == "stats":
        return stats(a.label, a.values)
    return report(a.run)


if __name__ == "__main__":
    sys.exit(main())
