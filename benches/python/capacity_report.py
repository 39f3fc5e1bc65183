#!/usr/bin/env python3
"""Turns the runs of scripts/bench-capacity.sh into the table of benches/bench-capacity.md.

    python3 benches/python/capacity_report.py RUN_DIR --itl-ms 20 [--json OUT.json]

RUN_DIR holds, for each TOOL in vllm-rs, vllm-bench, openai-python and each concurrency C:
- `TOOL-cC.rusage.json`: the client's rusage and CPU samples (rusage_run.py);
- vllm-rs: `vllm-rs-cC.result.json` (its result file) and `vllm-rs-cC.requests.jsonl`
  (--per-request);
- vllm-bench: `vllm-bench-cC.result.json` (--save-result --save-detailed);
- openai-python: `openai-python-cC.result.json` (stream_openai.py).

Figures:
- chunks: SSE data events received (the role chunk, one per token, the usage chunk; not
  `[DONE]`). vllm-rs and openai-python count them; vLLM's result has no count, so it is
  its token events (len(itls) + 1) plus the usage chunk, per successful request.
- client CPU: the whole process (rusage of the process tree: start-up, dataset, the run,
  the report) and the streaming window only (from the first request sent to the last
  answer: vllm-rs's own getrusage around its run, openai-python's os.times around its
  gather, vLLM's from /proc samples over [first start_time, last start_time + latency]).
- read lag (against `vllm-mock --stamp-events`): how long after the mock sent each chunk
  the tool recorded it (vllm-rs: the socket read it times chunks by; openai-python: when its
  loop got the chunk); `vllm bench serve` cannot be asked.
- added latency, per content chunk after the stream's first gap: `gap - ITL` (the gap
  between token events minus the configured ITL) and `late`, the chunk's lateness against
  the server's schedule: the mock emits token k at t1 + (k-1)·ITL, so the chunk's arrival
  minus that, less the smallest such difference in its stream (a lower bound on how late
  it was; it does not cancel out the way successive gaps do).
"""

import argparse
import json
import os
import sys

TOOLS = ("vllm-rs", "vllm-bench", "openai-python")


def pct(sorted_xs, p):
    if not sorted_xs:
        return float("nan")
    k = (len(sorted_xs) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(sorted_xs) - 1)
    return sorted_xs[lo] + (sorted_xs[hi] - sorted_xs[lo]) * (k - lo)


def cpu_at(samples, t):
    """The CPU seconds at time t, interpolated between /proc samples."""
    if not samples:
        return None
    if t <= samples[0][0]:
        return samples[0][1]
    for (t0, c0), (t1, c1) in zip(samples, samples[1:]):
        if t0 <= t <= t1:
            return c0 + (c1 - c0) * (t - t0) / (t1 - t0) if t1 > t0 else c1
    return samples[-1][1]


def latency_stats(itl_lists, itl_s):
    """Added latency from each successful request's gaps (the first gap left out)."""
    gaps, late = [], []
    for itls in itl_lists:
        if len(itls) < 2:
            continue
        body = itls[1:]
        gaps.extend(g - itl_s for g in body)
        # Arrival of content chunk k (k = 1 at the first gap's end) relative to the first
        # content chunk, less its due offset.
        acc, offs = 0.0, [0.0]
        for k, g in enumerate(body, start=1):
            acc += g
            offs.append(acc - k * itl_s)
        m = min(offs)
        late.extend(o - m for o in offs[1:])
    gaps.sort()
    late.sort()
    ms = 1e3

    def summary(xs):
        return {
            "n": len(xs),
            "mean_ms": (sum(xs) / len(xs) * ms) if xs else float("nan"),
            "p50_ms": pct(xs, 50) * ms,
            "p99_ms": pct(xs, 99) * ms,
            "p999_ms": pct(xs, 99.9) * ms,
            "max_ms": (xs[-1] * ms) if xs else float("nan"),
        }

    return {"gap": summary(gaps), "late": summary(late)}


def load(path):
    with open(path) as f:
        return json.load(f)


def one_run(d, tool, c, itl_s):
    base = os.path.join(d, f"{tool}-c{c}")
    if not os.path.exists(base + ".rusage.json"):
        return None
    ru = load(base + ".rusage.json")
    row = {
        "tool": tool,
        "concurrency": c,
        "cpu_total_s": ru["cpu_s"],
        "cpu_user_s": ru["user_s"],
        "cpu_sys_s": ru["sys_s"],
        "process_wall_s": ru["wall_s"],
        "max_rss_mib": ru["max_rss_kib"] / 1024,
        "exit_code": ru["exit_code"],
    }
    if os.path.exists(base + ".mock.json"):
        row["mock_cpu_s"] = load(base + ".mock.json")["mock_cpu_s"]
    if os.path.exists(base + ".machine.json"):
        m = load(base + ".machine.json")
        busy = m["machine_busy_s"] / m["tick"]
        # What else ran: the machine's busy time less the client's and the mock's.
        row["other_cpu_s"] = max(0.0, busy - ru["cpu_s"] - row.get("mock_cpu_s", 0.0))
        row["other_share"] = row["other_cpu_s"] / ru["wall_s"] if ru["wall_s"] else None
    if tool == "vllm-rs":
        res = load(base + ".result.json")
        reqs = []
        with open(base + ".requests.jsonl") as f:
            for line in f:
                if line.strip():
                    reqs.append(json.loads(line))
        ok = [r for r in reqs if r.get("success")]
        row["completed"] = len(ok)
        row["failed"] = len(reqs) - len(ok)
        row["chunks"] = sum(r.get("chunks", 0) for r in reqs)
        row["wall_s"] = res["duration"]
        row["cpu_window_s"] = res["vllm_rs"]["client_cpu_seconds"]
        row["self_reported_chunks_per_cpu_s"] = res["vllm_rs"].get("chunks_per_cpu_second")
        row["wake_lag_ms"] = res["vllm_rs"].get("wake_lag_ms")
        row["send_lag_ms"] = res["vllm_rs"].get("schedule_lag_ms")
        row["warnings"] = res["vllm_rs"].get("warnings")
        row["read_lag_ms"] = res["vllm_rs"].get("read_lag_ms")
        itl_lists = [r["itls_s"] for r in ok]
    elif tool == "vllm-bench":
        res = load(base + ".result.json")
        itl_lists = []
        chunks = 0
        ends = []
        for i, itls in enumerate(res["itls"]):
            ttft = res["ttfts"][i]
            if res["errors"][i] or not ttft:
                continue
            itl_lists.append(itls)
            chunks += len(itls) + 2
            ends.append(res["start_times"][i] + res["latencies"][i])
        row["completed"] = res["completed"]
        row["failed"] = res["failed"]
        row["chunks"] = chunks
        row["wall_s"] = res["duration"]
        t0, t1 = min(res["start_times"]), max(ends) if ends else None
        c0, c1 = cpu_at(ru["samples"], t0), cpu_at(ru["samples"], t1)
        row["cpu_window_s"] = (c1 - c0) if c0 is not None and c1 is not None else None
    else:
        res = load(base + ".result.json")
        row["completed"] = res["completed"]
        row["failed"] = res["failed"]
        row["chunks"] = res["total_chunks"]
        row["wall_s"] = res["duration"]
        row["cpu_window_s"] = res["cpu_user_s"] + res["cpu_sys_s"]
        row["read_lag_ms"] = res.get("read_lag_ms")
        itl_lists = [
            itls for itls, e in zip(res["itls"], res["errors"]) if not e
        ]
    row["chunks_per_cpu_s_total"] = row["chunks"] / row["cpu_total_s"] if row["cpu_total_s"] else None
    row["chunks_per_cpu_s_window"] = (
        row["chunks"] / row["cpu_window_s"] if row.get("cpu_window_s") else None
    )
    row["chunks_per_wall_s"] = row["chunks"] / row["wall_s"] if row["wall_s"] else None
    row["cpu_share_window"] = (
        row["cpu_window_s"] / row["wall_s"] if row.get("cpu_window_s") and row["wall_s"] else None
    )
    row["added"] = latency_stats(itl_lists, itl_s)
    return row


def f(x, nd=2):
    if x is None:
        return "–"
    if isinstance(x, float) and x != x:
        return "–"
    if isinstance(x, (int,)) or (isinstance(x, float) and abs(x) >= 1000):
        return f"{x:,.0f}"
    return f"{x:.{nd}f}"


def read_lag(lag):
    """The stamped chunks' wait (vllm-mock --stamp-events), when the tool measured it."""
    if not lag:
        return "–"
    return f"{f(lag['p50'], 3)} / {f(lag['p99'], 3)} / {f(lag['max'], 1)}"


def pc(cpu, wall):
    """CPU seconds over wall seconds, as a percentage of a core."""
    if cpu is None or not wall:
        return "–"
    return f"{100 * cpu / wall:.0f}%"


def markdown(rows, concurrencies):
    out = []
    out.append(
        "| tool | conc. | requests ok/failed | chunks | wall s | client CPU s (window / whole) "
        "| core use | chunks per CPU-s (window / whole) | gap−ITL p50 / p99 / max ms | gap−ITL mean ms "
        "| late p50 / p99 / max ms | read lag p50 / p99 / max ms | mock core use | other load |"
    )
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for c in concurrencies:
        for tool in TOOLS:
            r = rows.get((tool, c))
            if r is None:
                continue
            g, l = r["added"]["gap"], r["added"]["late"]
            out.append(
                f"| {tool} | {c} | {r['completed']}/{r['failed']} | {f(r['chunks'])} | {f(r['wall_s'], 1)} "
                f"| {f(r.get('cpu_window_s'))} / {f(r['cpu_total_s'])} "
                f"| {f(100 * r['cpu_share_window'], 0) if r.get('cpu_share_window') else '–'}% "
                f"| {f(r['chunks_per_cpu_s_window'])} / {f(r['chunks_per_cpu_s_total'])} "
                f"| {f(g['p50_ms'], 3)} / {f(g['p99_ms'], 3)} / {f(g['max_ms'], 1)} | {f(g['mean_ms'], 3)} "
                f"| {f(l['p50_ms'], 3)} / {f(l['p99_ms'], 3)} / {f(l['max_ms'], 1)} "
                f"| {read_lag(r.get('read_lag_ms'))} "
                f"| {pc(r.get('mock_cpu_s'), r['wall_s'])} | {pc(r.get('other_cpu_s'), r['process_wall_s'])} |"
            )
    out.append("")
    out.append("Ratio of chunks per client CPU-second against `vllm bench serve` (window / whole process):")
    out.append("")
    out.append("| conc. | vllm-rs ÷ vllm bench | openai-python ÷ vllm bench |")
    out.append("|---:|---:|---:|")
    for c in concurrencies:
        vb = rows.get(("vllm-bench", c))
        if vb is None:
            continue
        cells = []
        for tool in ("vllm-rs", "openai-python"):
            r = rows.get((tool, c))
            if r is None:
                cells.append("–")
                continue
            w = (
                r["chunks_per_cpu_s_window"] / vb["chunks_per_cpu_s_window"]
                if r["chunks_per_cpu_s_window"] and vb["chunks_per_cpu_s_window"]
                else None
            )
            t = r["chunks_per_cpu_s_total"] / vb["chunks_per_cpu_s_total"]
            cells.append(f"{f(w)}x / {f(t)}x")
        out.append(f"| {c} | {cells[0]} | {cells[1]} |")
    extra = [r for r in rows.values() if r["tool"] == "vllm-rs"]
    if extra:
        out.append("")
        out.append("vllm-rs's own view of itself (its table):")
        out.append("")
        out.append("| conc. | its chunks per CPU-s | wake-up lag p50 / p99 / max ms | send lag p99 ms | warnings |")
        out.append("|---:|---:|---:|---:|---|")
        for r in sorted(extra, key=lambda r: r["concurrency"]):
            w = r.get("wake_lag_ms") or {}
            s = r.get("send_lag_ms") or {}
            out.append(
                f"| {r['concurrency']} | {f(r.get('self_reported_chunks_per_cpu_s'))} "
                f"| {f(w.get('p50'), 3)} / {f(w.get('p99'), 3)} / {f(w.get('max'), 2)} "
                f"| {f(s.get('p99'), 3)} | {'; '.join(r.get('warnings') or []) or '–'} |"
            )
    return "\n".join(out)


def raw_markdown(rows, concurrencies):
    out = [
        "| tool | conc. | requests ok/failed | chunks | wall s | chunks per wall-s "
        "| client core use | client CPU s (window / whole) | chunks per CPU-s (window / whole) "
        "| server CPU s (its whole life) | other load |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c in concurrencies:
        for tool in TOOLS:
            r = rows.get((tool, c))
            if r is None:
                continue
            out.append(
                f"| {tool} | {c} | {r['completed']}/{r['failed']} | {f(r['chunks'])} | {f(r['wall_s'], 2)} "
                f"| {f(r['chunks_per_wall_s'])} "
                f"| {f(100 * r['cpu_share_window'], 0) if r.get('cpu_share_window') else '–'}% "
                f"| {f(r.get('cpu_window_s'))} / {f(r['cpu_total_s'])} "
                f"| {f(r['chunks_per_cpu_s_window'])} / {f(r['chunks_per_cpu_s_total'])} "
                f"| {f(r.get('mock_cpu_s'))} | {pc(r.get('other_cpu_s'), r['process_wall_s'])} |"
            )
    return "\n".join(out)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("run_dir", nargs="+", help="several: rounds of the same runs (--raw)")
    p.add_argument("--itl-ms", type=float, required=True)
    p.add_argument("--concurrency", default="1,256,1000")
    p.add_argument("--json", help="also write every figure here")
    p.add_argument("--raw", action="store_true", help="the unpaced table (no latency)")
    a = p.parse_args()
    cs = [int(x) for x in a.concurrency.split(",")]
    rounds = []
    for d in a.run_dir:
        rows = {}
        for c in cs:
            for tool in TOOLS:
                try:
                    r = one_run(d, tool, c, a.itl_ms / 1e3)
                except (OSError, KeyError, ValueError) as e:
                    print(f"warning: {tool} c={c}: {e}", file=sys.stderr)
                    r = None
                if r is not None:
                    r["run_dir"] = d
                    rows[(tool, c)] = r
        rounds.append(rows)
    if not a.raw:
        print(markdown(rounds[0], cs))
    else:
        for i, rows in enumerate(rounds):
            if len(rounds) > 1:
                print(f"Round {i + 1} of {len(rounds)} (`{os.path.basename(a.run_dir[i])}`):")
                print()
            print(raw_markdown(rows, cs))
            print()
        print(raw_summary(rounds, cs))
    if a.json:
        with open(a.json, "w") as fh:
            json.dump([r for rows in rounds for r in rows.values()], fh, indent=1)


def raw_summary(rounds, cs):
    """Chunks per client CPU-second (window) of each tool over the rounds, and the ratios."""
    import statistics

    out = [
        "| conc. | tool | chunks per CPU-s (window), median of rounds | each round "
        "| µs of CPU per chunk | ÷ `vllm bench serve` (median of the rounds' ratios) |",
        "|---:|---|---:|---|---:|---:|",
    ]
    for c in cs:
        for tool in TOOLS:
            xs = [
                rows[(tool, c)]["chunks_per_cpu_s_window"]
                for rows in rounds
                if (tool, c) in rows and rows[(tool, c)].get("chunks_per_cpu_s_window")
            ]
            if not xs:
                continue
            ratios = [
                rows[(tool, c)]["chunks_per_cpu_s_window"]
                / rows[("vllm-bench", c)]["chunks_per_cpu_s_window"]
                for rows in rounds
                if (tool, c) in rows
                and ("vllm-bench", c) in rows
                and rows[(tool, c)].get("chunks_per_cpu_s_window")
                and rows[("vllm-bench", c)].get("chunks_per_cpu_s_window")
            ]
            med = statistics.median(xs)
            ratio = f"{statistics.median(ratios):.2f}x" if ratios else "–"
            each = ", ".join(f(x) for x in xs)
            out.append(f"| {c} | {tool} | {f(med)} | {each} | {1e6 / med:.3f} | {ratio} |")
    return "\n".join(out)


if __name__ == "__main__":
    main()
