#!/usr/bin/env python3
"""What a client's requests looked like to the registry, from a docker-registry (distribution)
log kept with KEEP_LOG=FILE (common.sh): its `response completed` lines carry each request's
end time, the registry's time for it, and the remote address — the delay proxy's side of the
connection, one per client connection. The requests of one user agent (default: tagguard) are
split into runs where no request starts for GAP seconds (default 0.25: the scripts' pauses
between commands); per run: requests, connections, the most and the mean in flight at the
registry, and the requests by kind. Two builds sending the same stream show the same lines.
A path distribution has no route for (the referrers API in 2.8) gets no such line: those
requests are in the access log (reqcount.py) but not here.

Usage: streams.py LOG [AGENT] [GAP]
"""
import collections
import datetime
import re
import sys

from reqcount import kind

FIELD = re.compile(r'(\S+?)=("(?:[^"\\]|\\.)*"|\S+)')
UNIT = {"ns": 1e-9, "µs": 1e-6, "ms": 1e-3, "s": 1.0}


def seconds(duration):
    """Go's Duration text (851.137µs, 1.2ms); minutes are not expected for one request."""
    m = re.fullmatch(r"([0-9.]+)(ns|µs|ms|s)", duration)
    if not m:
        raise SystemExit(f"unexpected duration {duration!r}")
    return float(m.group(1)) * UNIT[m.group(2)]


def timestamp(text):
    base, _, frac = text.rstrip("Z").partition(".")
    return datetime.datetime.fromisoformat(base + "+00:00").timestamp() + float("0." + (frac or "0"))


def requests(path, agent):
    """(start, end, method, kind, connection) of every answered request of `agent`."""
    out = []
    with open(path, errors="replace") as f:
        for line in f:
            if 'msg="response completed' not in line:
                continue
            d = {k: v.strip('"') for k, v in FIELD.findall(line)}
            if agent not in d.get("http.request.useragent", ""):
                continue
            end = timestamp(d["time"])
            out.append((end - seconds(d["http.response.duration"]), end, d["http.request.method"],
                        kind(d["http.request.uri"]), d["http.request.remoteaddr"]))
    return sorted(out)


def runs(reqs, gap):
    out = []
    for r in reqs:
        if not out or r[0] - out[-1][-1][0] > gap:
            out.append([])
        out[-1].append(r)
    return out


def in_flight(run):
    """The most and the mean number of requests the registry was working on at once."""
    edges = sorted([(s, 1) for s, *_ in run] + [(e, -1) for _, e, *_ in run])
    now = most = 0
    area, last = 0.0, edges[0][0]
    for t, step in edges:
        area += now * (t - last)
        last, now = t, now + step
        most = max(most, now)
    span = edges[-1][0] - edges[0][0]
    return most, area / span if span > 0 else 0.0, span


def main():
    path = sys.argv[1]
    agent = sys.argv[2] if len(sys.argv) > 2 else "tagguard"
    gap = float(sys.argv[3]) if len(sys.argv) > 3 else 0.25
    for i, run in enumerate(runs(requests(path, agent), gap), 1):
        most, mean, span = in_flight(run)
        conns = len({c for *_, c in run})
        print(f"run {i}: {len(run)} requests over {span:.2f} s, {conns} connections, "
              f"in flight at most {most}, mean {mean:.1f}")
        kinds = collections.Counter(f"{m} {k}" for _, _, m, k, _ in run)
        print("  " + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())))


if __name__ == "__main__":
    main()
