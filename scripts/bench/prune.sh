#!/usr/bin/env bash
# Benchmark the plan of `tagguard prune` over one repository of 10,000 tags (scripts/bench/prune.py:
# 5,000 releases, protected, and 5,000 branch tags of a rule with
# `retain: { while: branch-exists, younger-than: 30d }`) through a proxy adding 20 ms each way
# (common.sh) in front of a local registry. The checkout's remote has BRANCHES branches
# (default 100) named like some of the tags, so 100 branch tags are kept and the rest are planned
# for deletion. Every tag points at one small image, so what is measured is listing, one manifest
# GET per tag, the records lookup, one config read, `git ls-remote` and the decisions.
# Prints wall time, the registry's request count, tagguard's peak RSS and the CPU time of
# tagguard, the registry and the proxy. Goal (issue 21, item 8): <= 10 s.
#
# Needs: docker-registry, skopeo, umoci, python3, git, /usr/bin/time (Debian: time), bc.
# Usage: scripts/bench/prune.sh [path/to/tagguard]   (default: target/release/tagguard)
#        RUNS=N (default 3), CONCURRENCY=N, BRANCHES=N.
#        First: cargo build --release --example delayproxy (or PROXY=py, see common.sh).
#
# APPLY=1: the apply instead (issue 21, item 8: deletes concurrent under the registry's adaptive
# limit). Each run seeds two identical repositories of 10,000 tags: 9,000 releases and GONE
# (default 1,000) tags of branches that do not exist, each alone on an image of its own
# (prune.py). `tagguard prune --apply` retires the GONE tags of one (plan, look again, delete by
# digest, the record beside each image); the peer deletes the same GONE manifests of the other,
# one `curl -X DELETE …/manifests/<digest>` after the other, through the same proxy, given the
# digests (so it neither lists nor reads anything: the least a sequential deleter does).
# RECORDS=false adds `audit: { record: false }` to the policy (no records written).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${1:-$here/../../target/release/tagguard}
[ -x "$bin" ] || { echo "build it first: cargo build --release" >&2; exit 2; }
runs=${RUNS:-3}
branches=${BRANCHES:-100}
[ -n "${APPLY:-}" ] && export REGISTRY_DELETE=true
# shellcheck source=common.sh
source "$here/common.sh"

umoci init --layout "$work/oci" >/dev/null
umoci new --image "$work/oci:img" >/dev/null
seed() { skopeo copy -q --dest-tls-verify=false "oci:$work/oci:img" "docker://127.0.0.1:$reg/$1:seed" >/dev/null; }
if [ -z "${APPLY:-}" ]; then
  seed acme/app
  python3 "$here/prune.py" "$reg" acme/app 9999 # + `seed` = 10,000 tags
fi

export HOME=$work GIT_CONFIG_NOSYSTEM=1
git init -q -b main "$work/upstream"
git -C "$work/upstream" -c user.name=b -c user.email=b@example.com commit -q --allow-empty -m init
for n in $(seq 0 $((branches - 1))); do git -C "$work/upstream" branch "branch-$n"; done
git clone -q --depth 1 "file://$work/upstream" "$work/checkout"
cat > "$work/checkout/.tagguard.yml" <<'YML'
version: 1
tags:
  - template: "{{ version }}"
    when: release
  - template: "br-{{ branch }}"
    when: { branch: "." }
    immutable: false
    retain: { while: branch-exists, younger-than: 30d }
YML
[ "${RECORDS:-true}" = false ] && echo 'audit: { record: false }' >> "$work/checkout/.tagguard.yml"

count() { grep -c '" [0-9][0-9][0-9] ' "$work/registry.log" || true; }
cpu() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"; }
cd "$work/checkout"
if [ -n "${APPLY:-}" ]; then
  # shellcheck source=prune-apply.sh
  source "$here/prune-apply.sh"
  exit 0
fi
times=()
for run in $(seq "$runs"); do
  before=$(count)
  reg_before=$(cpu "${pids[0]}")
  proxy_before=$(cpu "${pids[1]}")
  start=$(date +%s.%N)
  /usr/bin/time -v -o "$work/time.txt" "$bin" prune --image "127.0.0.1:$proxy/acme/app" \
    --format json --now 2100-01-01T00:00:00Z ${CONCURRENCY:+--concurrency "$CONCURRENCY"} > "$work/prune.json"
  end=$(date +%s.%N)
  t=$(echo "$end - $start" | bc)
  times+=("$t")
  requests=$(( $(count) - before ))
  rss_kib=$(awk -F: '/Maximum resident/ {gsub(/ /,"",$2); print $2}' "$work/time.txt")
  tg_cpu=$(awk -F': ' '/User time/ {u=$2} /System time/ {s=$2} END {print u + s}' "$work/time.txt")
  printf 'run %s: %.3f s, %s requests, peak RSS %.1f MiB, CPU: tagguard %.2f s, registry %.2f s, proxy %.2f s\n' \
    "$run" "$t" "$requests" "$(echo "$rss_kib / 1024" | bc -l)" "$tg_cpu" \
    "$(echo "$(cpu "${pids[0]}") - $reg_before" | bc -l)" "$(echo "$(cpu "${pids[1]}") - $proxy_before" | bc -l)"
done
python3 - "$work/prune.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
n = {}
for d in r["decisions"]:
    n[d["verdict"]] = n.get(d["verdict"], 0) + 1
print(f"tags {r['images'][0]['tags']}: {n}, findings {len(r['findings'])}")
PY
printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {printf "median %.3f s of %d runs\n", a[int((NR+1)/2)], NR}'
