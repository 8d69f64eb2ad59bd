#!/usr/bin/env python3
"""Counts the requests in a docker-registry (CNCF distribution) access log, from line FROM on
(0-based; the lines before belong to an earlier measurement), by method and kind of path.

Usage: reqcount.py LOG FROM [TO]   -> prints `total N` then `METHOD kind count` lines
"""
import re
import sys
from collections import Counter

LINE = re.compile(r'"(GET|HEAD|PUT|POST|PATCH|DELETE) (\S+) HTTP/[0-9.]+" (\d{3}) ')


def kind(path):
    path = path.split("?", 1)[0]
    if path in ("/v2/", "/v2"):
        return "/v2/ (ping)"
    if path.endswith("/tags/list"):
        return "tags/list"
    if re.search(r"/referrers/[^/]+$", path):
        return "referrers/<digest>"
    m = re.search(r"/manifests/([^/]+)$", path)
    if m:
        return "manifests/<digest>" if ":" in m.group(1) else "manifests/<tag>"
    if re.search(r"/blobs/uploads/?$", path):
        return "blobs/uploads/ (start)"
    if "/blobs/uploads/" in path:
        return "blobs/uploads/<session>"
    if "/blobs/" in path:
        return "blobs/<digest>"
    return path


def main():
    log, start = sys.argv[1], int(sys.argv[2])
    end = int(sys.argv[3]) if len(sys.argv) > 3 else None
    with open(log, errors="replace") as f:
        lines = [l for l in f if LINE.search(l)]
    counts = Counter()
    for l in lines[start:end]:
        m = LINE.search(l)
        counts[(m.group(1), kind(m.group(2)), m.group(3))] += 1
    print("total", sum(counts.values()))
    for (method, k, status), n in sorted(counts.items(), key=lambda x: (x[0][1], x[0][0])):
        print(f"{method} {k} {status} {n}")


if __name__ == "__main__":
    main()
