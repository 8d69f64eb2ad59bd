#!/usr/bin/env python3
"""Summarises an A/B session of scripts/bench/ab.sh: for each benchmark row, binary A's and B's
median, range and number of runs (every run of every round pooled), the registry's CPU per
fan-out run, and tagguard's own CPU (perf stat task-clock, ms) per command; the load averages
seen. B/A is the ratio of the medians.

Usage: ab.py OUT
"""
import collections
import glob
import os
import re
import statistics
import sys


def runs_of(text, label):
    """The `(runs: a b c)` list on the line starting with label."""
    for line in text.splitlines():
        if line.startswith(label):
            m = re.search(r"\(runs: ([0-9. ]+)\)", line)
            return [float(x) for x in m.group(1).split()] if m else []
    return []


def rows(out, who):
    r = collections.defaultdict(list)
    for f in sorted(glob.glob(os.path.join(out, f"*.{who}.*.out"))):
        text = open(f).read()
        script = os.path.basename(f).split(".")[0]
        if script == "check":
            m = re.search(r"^tagguard check:\s+([0-9.]+) s", text, re.M)
            if m:
                r["check, 10 tags + source (s)"].append(float(m.group(1)))
        elif script == "push":
            r["push retag, 10 tags (s)"] += runs_of(text, "tagguard push: ")
            r["push retag, recording off (s)"] += runs_of(text, "the same, recording off")
            r["copy 52 MB, tagguard (s)"] += runs_of(text, "tagguard push  ")
            r["copy 52 MB, skopeo (s)"] += runs_of(text, "skopeo copy    ")
        elif script == "fanout":
            for key, label in [("check new", "tagguard check (repositories new)"),
                               ("push", "tagguard push ("),
                               ("check again", "tagguard check (every tag there)")]:
                r[f"fan-out {key} (s)"] += runs_of(text, label)
                lines = text.splitlines()
                for i, line in enumerate(lines):
                    if line.startswith(label) and i + 1 < len(lines):
                        for triple in lines[i + 1].split(":", 1)[1].split():
                            tg, reg, proxy = (float(x) for x in triple.split(","))
                            r[f"fan-out {key}: registry CPU (s)"].append(reg)
    return r


def cpu(out, who):
    """tagguard's task-clock per (script, command, part), in ms."""
    r = collections.defaultdict(list)
    path = os.path.join(out, f"cpu.{who}")
    if not os.path.exists(path):
        return r
    seen = collections.Counter()
    for line in open(path):
        parts = line.split()
        if len(parts) != 4 or parts[1] == "tags":
            continue
        script, command, policy, ms = parts
        if script == "fanout":
            seen[(command, policy)] += 1
            if command == "check":
                # Each run checks its policy twice: first new repositories, then every tag there.
                part = "check new" if seen[(command, policy)] % 2 == 1 else "check again"
            else:
                part = command
            key = f"fan-out {part}"
        elif script == "push":
            key = {"policy.yml": "push retag", "norecord.yml": "push retag, recording off",
                   "one.yml": "copy 52 MB"}.get(policy, f"push {policy}")
        else:
            key = f"{script} {command}"
        r[f"tagguard CPU, {key} (ms)"].append(float(ms))
    return r


def fmt(v):
    if not v:
        return "-"
    return f"{statistics.median(v):.3f} ({min(v):.3f}-{max(v):.3f}, n={len(v)})"


def main():
    out = sys.argv[1]
    print(open(os.path.join(out, "README")).read().rstrip())
    a, b = rows(out, "A"), rows(out, "B")
    a.update(cpu(out, "A"))
    b.update(cpu(out, "B"))
    print(f"{'row':44} {'A median (range, n)':32} {'B median (range, n)':32} B/A")
    for key in list(dict.fromkeys(list(a) + list(b))):
        ratio = (f"{statistics.median(b[key]) / statistics.median(a[key]):.3f}"
                 if a.get(key) and b.get(key) else "-")
        print(f"{key:44} {fmt(a.get(key)):32} {fmt(b.get(key)):32} {ratio}")
    loads = [float(line.split()[3]) for line in open(os.path.join(out, "load"))]
    print(f"load average (1 min) before each script: {min(loads):.2f}-{max(loads):.2f}, "
          f"median {statistics.median(loads):.2f}")


if __name__ == "__main__":
    main()
