#!/usr/bin/env python3
"""Runs a command and reports the CPU time of its process tree, in all and over time.

    python benches/python/rusage_run.py OUT.json -- CMD [ARGS...]

Writes to OUT.json:
- `user_s`, `sys_s`, `cpu_s`: the rusage os.wait4 returns for the child (its own threads and
  every descendant it waited for), `wall_s`, `max_rss_kib`, `exit_code`;
- `samples`: [[t, cpu_s], ...] every 50 ms, t on time.perf_counter()'s clock (Linux's
  CLOCK_MONOTONIC, the clock Python benchmarks time their requests with) and cpu_s the
  child's utime + stime (+ its reaped children's) from /proc/PID/stat, so the CPU spent in
  any window of the run (the streaming, without start-up) can be read off.
The command's stdout and stderr pass through.
"""

import json
import os
import sys
import time

TICK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # After the command name: state is fields[0]; utime, stime, cutime, cstime are 14-17.
    return sum(int(x) for x in fields[11:15]) / TICK


def main():
    if len(sys.argv) < 4 or sys.argv[2] != "--":
        sys.exit("usage: rusage_run.py OUT.json -- CMD [ARGS...]")
    out, cmd = sys.argv[1], sys.argv[3:]
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        try:
            os.execvp(cmd[0], cmd)
        finally:
            os._exit(127)
    samples = []
    while True:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            break
        cpu = proc_cpu(pid)
        if cpu is not None:
            samples.append([time.perf_counter(), cpu])
        time.sleep(0.05)
    wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    result = {
        "user_s": usage.ru_utime,
        "sys_s": usage.ru_stime,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "wall_s": wall,
        "max_rss_kib": usage.ru_maxrss,
        "exit_code": code,
        "start": start,
        "samples": samples,
    }
    with open(out, "w") as f:
        json.dump(result, f)
    sys.exit(code if code >= 0 else 128 - code)


if __name__ == "__main__":
    main()
