#!/usr/bin/env python3
"""Summarises bench/run.sh results (a directory or a packed .jsonl) as Markdown tables.

Per scenario, per target: the median over repetitions with the min-max range. Python 3
stdlib only.

    bench/summarise.py RESULTS                     # print the tables
    bench/summarise.py RESULTS --fill FILE         # also replace the block between
                                                   # <!-- bench:results:begin/end --> in FILE
    bench/summarise.py --one-line RUN.json         # one line about one run
    bench/summarise.py --one-line RESULTS          # one line per run, prefixed by its name
    bench/summarise.py --pack DIR OUT.jsonl        # pack a results directory into one file

RESULTS is a results directory or a packed .jsonl file. In a directory, each run is
<variant>.<target>.r<rep>.json (the generator's --json output) with a .meta.json sidecar
written by run.sh (target, pids of the measured process(es) and of the node, exit code),
plus env.txt (key=value lines about the machine and the run). A .jsonl file holds the
same: a first line {"env": {key: value, ...}} (env.txt's lines, in order), then one line
per run, sorted by name: {"name": "<variant>.<target>.r<rep>", "meta": <.meta.json>,
"result": <.json, or null when missing, empty or not JSON>}; a non-empty file that is not
JSON is kept as text in "result_text" (or "meta_text"). Process numbers are summed over
the measured pids: the proxy (nginx: its workers), or for `direct` the node that
terminates TLS itself.
"""
import argparse
import glob
import json
import os
import re
import statistics
import sys

# `baseline`: another vertogw build (run.sh's VERTOGW_BASELINE_BIN), next to `vertogw`.
TARGET_ORDER = ["direct", "vertogw", "baseline", "haproxy", "nginx"]
BEGIN, END = "<!-- bench:results:begin -->", "<!-- bench:results:end -->"


# ------------------------------------------------------------------ reading one run
def dig(d, *paths):
    """The first of the dotted `paths` present in `d` (None when none is)."""
    for path in paths:
        cur = d
        for key in path.split("."):
            if isinstance(cur, dict) and key in cur:
                cur = cur[key]
            else:
                cur = None
                break
        if cur is not None:
            return cur
    return None


def as_count(v):
    """An error count: a number, or a {category: count} map, or a list of errors."""
    if v is None:
        return None
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, (int, float)):
        return v
    if isinstance(v, dict):
        return sum(as_count(x) or 0 for x in v.values())
    if isinstance(v, list):
        return sum(as_count(x) or 1 if not isinstance(x, (int, float)) else x for x in v)
    return None


def watched(result):
    """Per-pid process stats as {pid: stats}, whatever shape the generator used."""
    raw = dig(result, "watch", "watched", "processes", "pids", "watch_pids", "procs")
    out = {}
    if isinstance(raw, dict):
        for k, v in raw.items():
            if isinstance(v, dict):
                pid = v.get("pid", k)
                try:
                    out[int(pid)] = v
                except (TypeError, ValueError):
                    pass
    elif isinstance(raw, list):
        for v in raw:
            if isinstance(v, dict) and "pid" in v:
                out[int(v["pid"])] = v
    return out


def proc_totals(result, pids, sessions):
    """CPU and memory of a group of pids, summed (msgs/CPU-s combined harmonically)."""
    stats = watched(result)
    group = [stats[p] for p in pids if p in stats]
    if not group:
        return {}

    def total(key):
        vals = [g.get(key) for g in group]
        return sum(vals) if vals and all(isinstance(v, (int, float)) for v in vals) else None

    out = {
        "cpu_s": total("cpu_s"),
        "cpu_pct": total("cpu_pct"),
        "rss_before": total("rss_kib_before"),
        "rss_after": total("rss_kib_after"),
        "rss_end": total("rss_kib_end"),
        "hwm": total("hwm_kib"),
        "rss_per_session": total("rss_kib_per_session"),
        "rss_retained_per_session": total("rss_kib_retained_per_session"),
    }
    per_cpu = [g.get("msgs_per_cpu_s") for g in group]
    if per_cpu and all(isinstance(v, (int, float)) and v > 0 for v in per_cpu):
        out["msgs_per_cpu_s"] = 1.0 / sum(1.0 / v for v in per_cpu)
    if out["rss_per_session"] is None and sessions and None not in (out["rss_before"], out["rss_after"]):
        out["rss_per_session"] = (out["rss_after"] - out["rss_before"]) / sessions
    return out


def metrics(result, meta):
    """The numbers the tables show, from one generator result and its sidecar."""
    sessions = dig(result, "sessions", "config.sessions", "params.sessions", "logged_in")
    m = {
        "p50_ms": us_to_ms(dig(result, "rtt_us.p50", "rtt.p50_us")),
        "p99_ms": us_to_ms(dig(result, "rtt_us.p99", "rtt.p99_us")),
        "replies_per_s": dig(result, "replies_per_s", "throughput.replies_per_s", "msgs_per_s"),
        "last_login_ms": dig(result, "time_to_last_login_ms", "storm.time_to_last_login_ms",
                             "login.time_to_last_login_ms"),
        "errors": as_count(dig(result, "errors", "error_count", "errors_total")),
        "logged_in": dig(result, "logged_in", "logins_ok", "sessions_logged_in"),
        "sessions": sessions,
        "bg_p99_ms": us_to_ms(dig(result, "background.rtt_us.p99", "background_rtt_us.p99",
                                  "background.rtt.p99_us")),
        "service_p99_ms": us_to_ms(dig(result, "service_rtt_us.p99")),
        "bg_p50_ms": us_to_ms(dig(result, "background.rtt_us.p50", "background_rtt_us.p50")),
        "login_request_p99_ms": dig(result, "login_request_ms.p99"),
    }
    if meta:
        m["listen_overflows"] = meta.get("listen_overflows")
        proxy = proc_totals(result, meta.get("proxy_pids", []), sessions)
        node = proc_totals(result, meta.get("node_pids", []), sessions)
        for k, v in proxy.items():
            m["proxy_" + k] = v
        for k, v in node.items():
            m["node_" + k] = v
    return m


def us_to_ms(v):
    return v / 1000.0 if isinstance(v, (int, float)) else None


RUN_NAME = re.compile(r"(.+)\.([a-z]+)\.r(\d+)")


def load_runs(records):
    """[(variant, target, rep, metrics, meta)] for every (name, meta, result) record."""
    runs = []
    for name, meta, result in records:
        match = RUN_NAME.fullmatch(name)
        if not match:
            continue
        variant, target, rep = match.group(1), match.group(2), int(match.group(3))
        meta = meta if isinstance(meta, dict) else {}
        if meta.get("exit_code", 0) != 0 or not isinstance(result, dict):
            runs.append((variant, target, rep, None, meta))
        else:
            runs.append((variant, target, rep, metrics(result, meta), meta))
    return runs


def read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def read_raw(path):
    """(parsed JSON or None, the file's text when it is non-empty but not JSON, else None)."""
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8", errors="replace")
    except OSError:
        return None, None
    if not text.strip():
        return None, None
    try:
        return json.loads(text), None
    except ValueError:
        return None, text


# ------------------------------------------------------------------ results: directory or .jsonl
def run_names(results_dir):
    """The sorted run names of a directory: from <name>.json and <name>.meta.json files."""
    names = set()
    for path in glob.glob(os.path.join(results_dir, "*.json")):
        base = os.path.basename(path)
        name = base[: -len(".meta.json")] if base.endswith(".meta.json") else base[: -len(".json")]
        if RUN_NAME.fullmatch(name):
            names.add(name)
    return sorted(names)


def read_results(path):
    """(env, [(name, meta, result)]) from a results directory or a packed .jsonl file."""
    if os.path.isdir(path):
        records = [(name, read_json(os.path.join(path, name + ".meta.json")),
                    read_json(os.path.join(path, name + ".json"))) for name in run_names(path)]
        return read_env(path), records
    if os.path.isfile(path):
        return read_jsonl(path)
    sys.exit(f"{path}: no such results directory or .jsonl file")


def read_jsonl(path):
    env, records = {}, []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError as e:
                sys.exit(f"{path}:{number}: not JSON: {e}")
            if isinstance(obj, dict) and "env" in obj and "name" not in obj:
                env = obj["env"] if isinstance(obj["env"], dict) else {}
            elif isinstance(obj, dict) and isinstance(obj.get("name"), str):
                records.append((obj["name"], obj.get("meta"), obj.get("result")))
            else:
                sys.exit(f"{path}:{number}: neither an env line nor a run record")
    return env, records


def env_lines(results_dir):
    """env.txt as an ordered {key: value}, refusing lines that would not survive packing."""
    env = {}
    path = os.path.join(results_dir, "env.txt")
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().split("\n")
    except OSError:
        return env
    if lines and lines[-1] == "":
        lines.pop()
    for number, line in enumerate(lines, 1):
        if "=" not in line:
            sys.exit(f"{path}:{number}: not key=value, cannot pack: {line!r}")
        k, v = line.split("=", 1)
        if k in env:
            sys.exit(f"{path}:{number}: {k} repeated, cannot pack")
        env[k] = v
    return env


def pack(results_dir, out_path):
    """Writes the runs of results_dir as one .jsonl file (see the module docstring)."""
    if not os.path.isdir(results_dir):
        sys.exit(f"{results_dir}: not a directory")

    def dump(obj):
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))

    lines = [dump({"env": env_lines(results_dir)})]
    names = run_names(results_dir)
    for name in names:
        record = {"name": name}
        texts = {}
        for key, suffix in (("meta", ".meta.json"), ("result", ".json")):
            record[key], texts[key] = read_raw(os.path.join(results_dir, name + suffix))
        for key, text in texts.items():
            if text is not None:
                record[key + "_text"] = text
        lines.append(dump(record))
    tmp = out_path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, out_path)
    return len(names)


# ------------------------------------------------------------------ formatting
def fmt_num(v, digits):
    if v is None:
        return "—"
    if digits == 0:
        return f"{v:,.0f}"
    return f"{v:,.{digits}f}"


def cell(values, digits=1):
    """median (min–max) of the non-missing values; '—' when there are none."""
    vals = [v for v in values if isinstance(v, (int, float))]
    if not vals:
        return "—"
    med = statistics.median(vals)
    if len(vals) == 1:
        return fmt_num(med, digits)
    return f"{fmt_num(med, digits)} ({fmt_num(min(vals), digits)}–{fmt_num(max(vals), digits)})"


def table(runs, variant, columns):
    """One Markdown table: a row per target, a column per (title, key, digits)."""
    by_target = {}
    failed = {}
    for v, t, _, m, _ in runs:
        if v != variant:
            continue
        if m is None:
            failed[t] = failed.get(t, 0) + 1
        else:
            by_target.setdefault(t, []).append(m)
    targets = [t for t in TARGET_ORDER if t in by_target or t in failed]
    if not targets:
        return None
    lines = ["| target | runs | " + " | ".join(c[0] for c in columns) + " |",
             "|---|---|" + "---|" * len(columns)]
    for t in targets:
        ms = by_target.get(t, [])
        n = f"{len(ms)}" + (f" (+{failed[t]} failed)" if t in failed else "")
        cells = [cell([m.get(key) for m in ms], digits) for _, key, digits in columns]
        lines.append(f"| {t} | {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


SECTIONS = [
    ("steady", "Steady load: RTT of `echo` round trips through the target", [
        ("RTT p50 ms", "p50_ms", 2), ("RTT p99 ms", "p99_ms", 2),
        ("service RTT p99 ms", "service_p99_ms", 2), ("replies/s", "replies_per_s", 0), ("errors", "errors", 0),
        ("proxy CPU %", "proxy_cpu_pct", 0)]),
    ("throughput", "Throughput: closed loop, as fast as the target allows", [
        ("messages/s", "replies_per_s", 0), ("proxy CPU %", "proxy_cpu_pct", 0),
        ("messages per proxy CPU-s", "proxy_msgs_per_cpu_s", 0),
        ("node CPU %", "node_cpu_pct", 0), ("RTT p99 ms", "p99_ms", 2), ("errors", "errors", 0)]),
    ("idle-*", "Idle memory: logged-in sessions held", [
        ("sessions", "sessions", 0), ("proxy RSS before MiB", "proxy_rss_before_mib", 1),
        ("proxy RSS all logged in MiB", "proxy_rss_after_mib", 1),
        ("KiB per session", "proxy_rss_per_session", 1),
        ("time to last login ms", "last_login_ms", 0), ("errors", "errors", 0)]),
    ("storm", "Login storm: all sessions at once", [
        ("sessions", "sessions", 0), ("time to last login ms", "last_login_ms", 0),
        ("login request p99 ms", "login_request_p99_ms", 1),
        ("logged in", "logged_in", 0), ("errors", "errors", 0), ("proxy CPU %", "proxy_cpu_pct", 0),
        ("listen overflows", "listen_overflows", 0)]),
    ("storm-load", "Login storm under load: background RTT during the storm", [
        ("background RTT p50 ms", "bg_p50_ms", 2), ("background RTT p99 ms", "bg_p99_ms", 2),
        ("storm: time to last login ms", "last_login_ms", 0),
        ("storm: login request p99 ms", "login_request_p99_ms", 1), ("errors", "errors", 0),
        ("listen overflows", "listen_overflows", 0)]),
    ("large", "Large messages: memory once idle again after one 999,999-byte echo each way per session", [
        ("sessions", "sessions", 0), ("proxy RSS all logged in MiB", "proxy_rss_after_mib", 1),
        ("proxy peak RSS MiB", "proxy_rss_hwm_mib", 1), ("proxy RSS after hold MiB", "proxy_rss_end_mib", 1),
        ("KiB per idle session", "proxy_rss_per_session", 1),
        ("KiB retained per session", "proxy_rss_retained_per_session", 1),
        ("large RTT p99 ms", "p99_ms", 1), ("errors", "errors", 0)]),
]


def per_rep_throughput(runs):
    """The throughput scenario repetition by repetition, vertogw's CPU per message against
    each other proxy's in the same repetition: the targets of one repetition run back to
    back, and the machine drifts between repetitions (docs/performance.md), so this is
    the fairer comparison. None without vertogw, another proxy and two repetitions."""
    reps = {}
    for v, t, rep, m, _ in runs:
        if v != "throughput" or m is None:
            continue
        rate, per_cpu = m.get("replies_per_s"), m.get("proxy_msgs_per_cpu_s")
        if isinstance(rate, (int, float)) and isinstance(per_cpu, (int, float)) and per_cpu > 0:
            reps.setdefault(rep, {})[t] = (rate, 1e6 / per_cpu)
    targets = [t for t in TARGET_ORDER if t != "direct" and any(t in r for r in reps.values())]
    others = [t for t in ("haproxy", "nginx") if t in targets]
    if "vertogw" not in targets or not others or len(reps) < 2:
        return None
    lines = ["| repetition | " + " | ".join(f"{t}: msgs/s, µs per message" for t in targets)
             + " | " + " | ".join(f"vertogw's µs per message vs {o}" for o in others) + " |",
             "|---|" + "---|" * (len(targets) + len(others))]
    for rep in sorted(reps):
        row = reps[rep]
        cells = [f"{fmt_num(row[t][0], 0)}, {row[t][1]:.2f}" if t in row else "—" for t in targets]
        for o in others:
            if "vertogw" in row and o in row:
                cells.append(f"{(row['vertogw'][1] / row[o][1] - 1) * 100:+.1f} %")
            else:
                cells.append("—")
        lines.append(f"| r{rep} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def derive(runs):
    for _, _, _, m, _ in runs:
        if m is None:
            continue
        for k in ("before", "after", "end", "hwm"):
            v = m.get(f"proxy_{k}" if k == "hwm" else f"proxy_rss_{k}")
            m[f"proxy_rss_{k}_mib"] = v / 1024.0 if isinstance(v, (int, float)) else None


def read_env(results_dir):
    env = {}
    try:
        with open(os.path.join(results_dir, "env.txt")) as f:
            for line in f:
                if "=" in line:
                    k, v = line.rstrip("\n").split("=", 1)
                    env[k] = v
    except OSError:
        pass
    return env


def render(results):
    env, records = read_results(results)
    runs = load_runs(records)
    derive(runs)
    out = []
    if env:
        out.append(f"Run `{env.get('stamp', '?')}`: `{env.get('command', '')}`  ")
        out.append(f"Machine: {env.get('nproc', '?')} CPUs ({env.get('cpu', '?')}), "
                   f"{env.get('ram', '?')} RAM, {env.get('kernel', '?')}, {env.get('os', '?')}; "
                   f"open files {env.get('nofile', '?')}, somaxconn {env.get('somaxconn', '?')}  ")
        baseline = f"baseline {env['baseline']}, " if env.get("baseline") else ""
        out.append(f"Software: vertogw {env.get('vertogw', '?')}, {baseline}"
                   f"HAProxy {env.get('haproxy', '?')}, "
                   f"nginx {env.get('nginx', '?')}, {env.get('openssl', '?')}  ")
        out.append(f"Parameters: {env.get('params', '?')}")
        out.append("")
    out.append("Cells: median over repetitions (min–max). \"proxy\" = the process(es) terminating "
               "wss: vertogw, haproxy, nginx's workers summed; for `direct`, the TLS node itself. "
               "RTT: steady from the intended send time (service RTT: actual send → reply). "
               "Listen overflows: the machine-wide TcpExt counter's increase during the run "
               "(accept queue full: the SYN is dropped and retried after ≥ 1 s).")
    if any(t == "baseline" for _, t, *_ in runs):
        out += ["", "`baseline`: another vertogw build (`VERTOGW_BASELINE_BIN`), same map, "
                "its own port, interleaved with the other targets."]
    variants = sorted({v for v, *_ in runs})
    for key, title, cols in SECTIONS:
        matching = [v for v in variants if (v.startswith("idle-") if key == "idle-*" else v == key)]
        for variant in sorted(matching, key=lambda v: int(v.split("-")[1]) if v.startswith("idle-") else 0):
            t = table(runs, variant, cols)
            if t:
                suffix = f" ({int(variant.split('-')[1]):,} sessions)" if variant.startswith("idle-") else ""
                out += ["", f"### {title}{suffix}", "", t]
            if variant == "throughput" and (by_rep := per_rep_throughput(runs)):
                out += ["", "### Throughput, repetition by repetition", "",
                        "The proxy's CPU per message (µs), and vertogw's against each other "
                        "proxy's in the same repetition (negative: vertogw spends less).", "",
                        by_rep]
    if not runs:
        out += ["", "_No runs found._"]
    return "\n".join(out) + "\n"


def fill(doc_path, text):
    with open(doc_path) as f:
        doc = f.read()
    start, end = doc.find(BEGIN), doc.find(END)
    if start < 0 or end < start:
        sys.exit(f"{doc_path}: no {BEGIN} … {END} block to fill")
    doc = doc[: start + len(BEGIN)] + "\n" + text + doc[end:]
    with open(doc_path, "w") as f:
        f.write(doc)


def one_lines(path):
    """One line about one run file, or one per run of a results directory or .jsonl."""
    if os.path.isdir(path) or path.endswith(".jsonl"):
        _, records = read_results(path)
        return "\n".join(f"{name}: {one_line(result, meta)}" for name, meta, result in records)
    return one_line(read_json(path), read_json(path[: -len(".json")] + ".meta.json"))


def one_line(result, meta):
    if not isinstance(result, dict):
        return "no JSON"
    m = metrics(result, meta)
    parts = []
    if m["p50_ms"] is not None:
        parts.append(f"rtt p50 {m['p50_ms']:.2f} ms p99 {m['p99_ms'] or 0:.2f} ms")
    if m["replies_per_s"]:
        parts.append(f"{m['replies_per_s']:,.0f} replies/s")
    if m["last_login_ms"] is not None:
        parts.append(f"last login {m['last_login_ms']:,.0f} ms")
    if m["bg_p99_ms"] is not None:
        parts.append(f"bg p99 {m['bg_p99_ms']:.2f} ms")
    if m.get("proxy_cpu_pct") is not None:
        parts.append(f"proxy cpu {m['proxy_cpu_pct']:.0f}%")
    if m.get("proxy_rss_per_session") is not None and result.get("mode") in ("idle", "storm", "large"):
        parts.append(f"{m['proxy_rss_per_session']:.1f} KiB/session")
    if m.get("proxy_rss_retained_per_session") is not None:
        parts.append(f"{m['proxy_rss_retained_per_session']:.1f} KiB/session retained after large messages")
    errors = result.get("errors")
    detail = ""
    if isinstance(errors, dict) and m["errors"]:
        detail = " (" + ", ".join(f"{k} {v}" for k, v in errors.items() if v) + ")"
    parts.append(f"errors {m['errors'] if m['errors'] is not None else '?'}{detail}")
    return ", ".join(parts)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("results", nargs="?", metavar="RESULTS",
                   help="a results directory or a packed .jsonl file")
    p.add_argument("--fill", metavar="FILE", help="replace the results block of FILE")
    p.add_argument("--one-line", metavar="RUN_JSON",
                   help="summarise one run in one line (a directory or .jsonl: every run)")
    p.add_argument("--pack", nargs=2, metavar=("DIR", "OUT_JSONL"),
                   help="pack the runs and env.txt of DIR into one .jsonl file")
    args = p.parse_args()
    if args.pack:
        n = pack(*args.pack)
        print(f"{args.pack[1]}: {n} runs", file=sys.stderr)
        return
    if args.one_line:
        print(one_lines(args.one_line))
        return
    if not args.results:
        p.error("RESULTS is required")
    text = render(args.results)
    if args.fill:
        fill(args.fill, text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
