#!/usr/bin/env python3
"""Splits one `tagguard push` retag run (10 tags) into its round trips, from an strace of its
debug log. Run it as:

  RUST_LOG=debug strace -f --seccomp-bpf -s 300 -ttt -e trace=execve,write -o TRACE \
    tagguard push … --source HOST/REPO@sha256:…
  scripts/bench/pushphases.py TRACE [N]   (N: tags written, default 10)

Prints the milliseconds of: start (exec to the first request), the source GET (which also learns
the auth scheme), the lookups (and tag list), the PUTs, the first and the second read-back.
"""
import re
import sys


def main():
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    ev = []
    for line in open(sys.argv[1]):
        m = re.match(r"\d+\s+([\d.]+) (.*)", line)
        if m:
            ev.append((float(m.group(1)), m.group(2)))
    t0 = ev[0][0]

    def first(pattern):
        return next(t for t, r in ev if re.search(pattern, r))

    source = first(r"GET /v2/\S+/manifests/sha256")
    puts = first(r"PUT /v2")
    puts_done = max(t for t, r in ev if "PUT /v2" in r and "-> 20" in r)
    heads = sorted(t for t, r in ev if t > puts_done and "HEAD /v2" in r and "-> " in r)
    marks = [
        ("start", source),
        ("source GET", first(r"auth scheme")),
        ("lookups", puts),
        ("PUTs", puts_done),
        ("read-back 1", heads[n - 1]),
        ("read-back 2", heads[-1]),
    ]
    prev, out = t0, []
    for name, t in marks:
        out.append(f"{name} {1000 * (t - prev):.0f}")
        prev = t
    print(" | ".join(out), f"| to the last response {1000 * (heads[-1] - t0):.0f} ms")


if __name__ == "__main__":
    main()
