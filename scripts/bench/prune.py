#!/usr/bin/env python3
"""Seeds a repository with tags for the prune benchmark: PUTs the manifest of an image already in
the repository (tag `seed`) under every tag, 32 requests at a time, straight to the registry (no
delay proxy). Loopback only.

Without GONE: half are releases X.Y.Z (immutable: protected), half branch tags br-branch-N
(`retain: { while: branch-exists, younger-than: 30d }`) — the plan benchmark.
With GONE: TOTAL - GONE releases and GONE tags br-gone-N of branches that do not exist, each on
an image of its own (the seed's manifest with an annotation naming it: the same blobs, its own
digest), so that prune deletes each by digest — the apply benchmark. Their digests are written
to DIGESTS_FILE, one a line, for the peer that deletes the same manifests.

Usage: prune.py REGISTRY_PORT REPOSITORY [TOTAL [GONE DIGESTS_FILE]]
"""
import concurrent.futures
import hashlib
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from audit import MEDIA, request  # noqa: E402  (one HTTP helper for the seeders)


def releases(n):
    out = [f"{a}.{b}.{c}" for a in range(100) for b in range(10) for c in range(10)]
    return out[:n]


def tags(total):
    half = total // 2
    return releases(half) + [f"br-branch-{n}" for n in range(total - half)]


def main():
    port, repo = int(sys.argv[1]), sys.argv[2]
    total = int(sys.argv[3]) if len(sys.argv) > 3 else 10_000
    gone = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    manifest = request(port, "GET", f"/v2/{repo}/manifests/seed", headers={"Accept": MEDIA})
    put = lambda t, body=manifest: request(
        port, "PUT", f"/v2/{repo}/manifests/{t}", body, {"Content-Type": MEDIA}
    )
    own = []
    for n in range(gone):
        m = json.loads(manifest)
        m["annotations"] = {"bench.gone": str(n)}
        body = json.dumps(m, separators=(",", ":")).encode()
        own.append((f"br-gone-{n}", body, "sha256:" + hashlib.sha256(body).hexdigest()))
    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        if gone:
            list(pool.map(put, releases(total - gone)))
            list(pool.map(lambda o: put(o[0], o[1]), own))
        else:
            list(pool.map(put, tags(total)))
    if gone:
        with open(sys.argv[5], "w") as f:
            f.writelines(d + "\n" for _, _, d in own)
    print(f"seeded {total} tags in {repo}" + (f", {gone} of them alone on their image" if gone else ""))


if __name__ == "__main__":
    main()
