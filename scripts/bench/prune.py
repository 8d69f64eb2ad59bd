#!/usr/bin/env python3
"""Seeds a repository with tags for the prune benchmark: PUTs the manifest of an image already in
the repository (tag `seed`) under every tag, 32 requests at a time, straight to the registry (no
delay proxy). Half are releases X.Y.Z (immutable: protected), half branch tags br-branch-N
(`retain: { while: branch-exists, younger-than: 30d }`). Loopback only.

Usage: prune.py REGISTRY_PORT REPOSITORY [TOTAL]
"""
import concurrent.futures
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from audit import MEDIA, request  # noqa: E402  (one HTTP helper for the seeders)


def tags(total):
    releases = [f"{a}.{b}.{c}" for a in range(50) for b in range(10) for c in range(10)]
    half = total // 2
    return releases[:half] + [f"br-branch-{n}" for n in range(total - half)]


def main():
    port, repo = int(sys.argv[1]), sys.argv[2]
    total = int(sys.argv[3]) if len(sys.argv) > 3 else 10_000
    manifest = request(port, "GET", f"/v2/{repo}/manifests/seed", headers={"Accept": MEDIA})
    put = lambda t: request(port, "PUT", f"/v2/{repo}/manifests/{t}", manifest, {"Content-Type": MEDIA})
    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        list(pool.map(put, tags(total)))
    print(f"seeded {total} tags")


if __name__ == "__main__":
    main()
