#!/usr/bin/env python3
"""Benchmark `tagguard tags` against the git CLI doing the same lookups.

Builds (once, cached under $TMPDIR) a repository of 100,000 commits and 10,000 tags with
`git fast-import`, plus a small one, then times, in the same run:
  - tagguard tags             (release build, embedded default policy)
  - git rev-parse HEAD && git tag --points-at HEAD   (the peer: the same lookups)
and reports the median wall time and peak RSS of each. Goals (issue 2): on the large
repository tagguard <= 1.0x git's time; on the small one <= 5 ms and <= 15 MiB.

Usage: scripts/bench/tags.py [--runs N] [--binary PATH]
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

COMMITS = 100_000
TAGS = 10_000


def git(repo, *args, stdin=None):
    env = dict(os.environ, GIT_CONFIG_NOSYSTEM="1", HOME=repo)
    return subprocess.run(["git", "-C", repo, *args], input=stdin, env=env, check=True,
                          capture_output=True).stdout


def build_repo(path, commits, tags):
    """A linear history; every (commits // tags)-th commit tagged, half of them annotated;
    HEAD carries the highest release."""
    os.makedirs(path)
    git(path, "init", "-q", "-b", "main")
    out = []
    step = max(1, commits // tags)
    t0 = 1_700_000_000
    for i in range(1, commits + 1):
        data = f"{i}\n".encode()
        out.append(b"commit refs/heads/main\n")
        out.append(f"mark :{i}\n".encode())
        out.append(f"committer Bench <bench@example.com> {t0 + i} +0000\n".encode())
        msg = f"commit {i}\n".encode()
        out.append(f"data {len(msg)}\n".encode() + msg)
        if i > 1:
            out.append(f"from :{i - 1}\n".encode())
        out.append(b"M 644 inline counter.txt\n")
        out.append(f"data {len(data)}\n".encode() + data)
        out.append(b"\n")
    n = 0
    for i in range(step, commits + 1, step):
        n += 1
        name = f"v{n // 100}.{n % 100}.0" if i != commits else "v999.0.0"
        if n % 2:
            out.append(f"reset refs/tags/{name}\nfrom :{i}\n\n".encode())
        else:
            msg = f"release {name}\n".encode()
            out.append(f"tag {name}\nfrom :{i}\n".encode())
            out.append(f"tagger Bench <bench@example.com> {t0 + i} +0000\n".encode())
            out.append(f"data {len(msg)}\n".encode() + msg)
    git(path, "fast-import", "--quiet", stdin=b"".join(out))
    git(path, "checkout", "-q", "main")
    git(path, "pack-refs", "--all")
    git(path, "gc", "-q")


def measure(cmd, cwd, runs):
    """Median wall seconds over `runs` runs of `cmd` (a list of argv), and the peak RSS (KiB)
    of its largest process. RSS is read by GNU time: a child forked from this Python process
    would report Python's own pages as its peak."""
    times = []
    env = {"PATH": os.environ["PATH"], "HOME": cwd, "GIT_CONFIG_NOSYSTEM": "1"}
    for _ in range(runs):
        start = time.perf_counter()
        for argv in cmd:
            subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - start)
    peak = 0
    for argv in cmd:
        out = subprocess.run(["/usr/bin/time", "-f", "%M", *argv], cwd=cwd, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=True)
        peak = max(peak, int(out.stderr.decode().strip().splitlines()[-1]))
    return statistics.median(times), peak


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "--build":
        return build_repo(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--binary", default=None)
    args = ap.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    binary = args.binary or os.path.join(root, "target", "release", "tagguard")
    if not args.binary:
        subprocess.run(["cargo", "build", "--release", "-q"], cwd=root, check=True)
    cache = os.path.join(tempfile.gettempdir(), "tagguard-bench")
    large = os.path.join(cache, f"large-{COMMITS}-{TAGS}")
    small = os.path.join(cache, "small")
    # Built in a child process: this one must stay small, because a forked child's peak RSS
    # counts the parent's pages until it execs.
    for path, commits, tags in [(large, COMMITS, TAGS), (small, 20, 5)]:
        if not os.path.exists(path):
            t = time.perf_counter()
            subprocess.run([sys.executable, __file__, "--build", path, str(commits), str(tags)],
                           check=True)
            print(f"built {path} in {time.perf_counter() - t:.1f} s", file=sys.stderr)

    tagguard = [[binary, "tags", "--timestamp=1700000000"]]
    peer = [["git", "rev-parse", "HEAD"], ["git", "tag", "--points-at", "HEAD"]]
    print(f"{'repository':<34} {'command':<44} {'median':>10} {'peak RSS':>10}")
    results = {}
    for label, repo in [(f"{COMMITS} commits, {TAGS} tags", large), ("20 commits, 5 tags", small)]:
        for name, cmd in [("tagguard tags", tagguard),
                          ("git rev-parse HEAD + git tag --points-at", peer)]:
            med, rss = measure(cmd, repo, args.runs)
            results[(label, name)] = (med, rss)
            print(f"{label:<34} {name:<44} {med * 1000:>8.2f}ms {rss / 1024:>7.1f}MiB")
    (lt, lr), (gt, _) = results[(f"{COMMITS} commits, {TAGS} tags", "tagguard tags")], \
        results[(f"{COMMITS} commits, {TAGS} tags", "git rev-parse HEAD + git tag --points-at")]
    st, sr = results[("20 commits, 5 tags", "tagguard tags")]
    print()
    print(f"large repository: tagguard / git = {lt / gt:.2f}x   (goal <= 1.00x)")
    print(f"small repository: tagguard {st * 1000:.2f} ms (goal <= 5 ms), peak {sr / 1024:.1f} MiB (goal <= 15 MiB)")
    print("peer not run here: docker/metadata-action, about 240 ms and 120 MiB for the same job")


if __name__ == "__main__":
    main()
