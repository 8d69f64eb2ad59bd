#!/usr/bin/env python3
"""Seeds a repository with 10,000 tags for the audit benchmark: PUTs the manifest of an image
already in the repository (tag `seed`) under every tag, 32 requests at a time, straight to the
registry (no delay proxy). The tags are what the default policy makes over a long life: 5,000
releases X.Y.Z (50 majors x 10 minors x 10 patches), their floating X.Y, X and latest, and
commit tags sha-<7 hex> up to 10,000 in all. Loopback only.

Usage: audit.py REGISTRY_PORT REPOSITORY [TOTAL]
"""
import concurrent.futures
import http.client
import random
import sys
import threading

MEDIA = "application/vnd.oci.image.manifest.v1+json"
local = threading.local()


def conn(port):
    if getattr(local, "c", None) is None:
        local.c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    return local.c


def request(port, method, path, body=None, headers=None):
    c = conn(port)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    if r.status >= 300:
        raise SystemExit(f"{method} {path}: {r.status} {data[:200]!r}")
    return data


def tags(total):
    out = ["latest"]
    for major in range(50):
        out.append(f"{major}")
        for minor in range(10):
            out.append(f"{major}.{minor}")
            out.extend(f"{major}.{minor}.{patch}" for patch in range(10))
    rng = random.Random(7)
    seen = set()
    while len(out) < total:
        sha = "%07x" % rng.getrandbits(28)
        if sha not in seen:
            seen.add(sha)
            out.append(f"sha-{sha}")
    return out[:total]


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
