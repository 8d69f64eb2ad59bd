#!/usr/bin/env bash
# Benchmark `tagguard audit` of one repository of 10,000 tags (scripts/bench/audit.py: 5,000
# releases, their floating tags, commit tags) through a proxy adding 20 ms each way (common.sh) in
# front of a local registry (docker-registry, plain HTTP on loopback), with the embedded default policy.
# Every tag points at one small unlabelled image, so the audit is clean (exit 0) and reads one
# manifest and one config: what is measured is listing, one HEAD per tag and the records lookup.
# Prints wall time, the registry's request count, tagguard's peak RSS and the CPU time of
# tagguard, the registry and the proxy (they share the machine's cores). Goals (issue 14,
# item 6): <= 10 s, <= 64 MiB.
#
# Needs: docker-registry, skopeo, umoci, python3, /usr/bin/time (Debian: time), bc.
# Usage: scripts/bench/audit.sh [path/to/tagguard]   (default: target/release/tagguard)
#        RUNS=N (default 3) audits the same repository N times; the median is printed.
#        CONCURRENCY=N passes --concurrency N (default: tagguard's own default).
#        First: cargo build --release --example delayproxy (or PROXY=py, see common.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${1:-$here/../../target/release/tagguard}
[ -x "$bin" ] || { echo "build it first: cargo build --release" >&2; exit 2; }
runs=${RUNS:-3}
# shellcheck source=common.sh
source "$here/common.sh"

umoci init --layout "$work/oci" >/dev/null
umoci new --image "$work/oci:img" >/dev/null
skopeo copy -q --dest-tls-verify=false "oci:$work/oci:img" "docker://127.0.0.1:$reg/acme/app:seed" >/dev/null
seed_start=$(date +%s.%N)
python3 "$here/audit.py" "$reg" acme/app 9999 # + `seed` = 10,000 tags
printf 'seeding took %.1f s\n' "$(echo "$(date +%s.%N) - $seed_start" | bc)"

count() { grep -c '" [0-9][0-9][0-9] ' "$work/registry.log" || true; }
# CPU seconds the registry process has used: on a small machine it, not the client, is the floor.
cpu() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"; }
reg_cpu() { cpu "${pids[0]}"; }
proxy_cpu() { cpu "${pids[1]}"; }
export HOME=$work
cd "$work"
times=()
for run in $(seq "$runs"); do
  before=$(count)
  cpu_before=$(reg_cpu)
  proxy_before=$(proxy_cpu)
  start=$(date +%s.%N)
  /usr/bin/time -v -o "$work/time.txt" "$bin" audit --image "127.0.0.1:$proxy/acme/app" \
    --format json ${CONCURRENCY:+--concurrency "$CONCURRENCY"} > "$work/audit.json"
  end=$(date +%s.%N)
  t=$(echo "$end - $start" | bc)
  times+=("$t")
  requests=$(( $(count) - before ))
  rss_kib=$(awk -F: '/Maximum resident/ {gsub(/ /,"",$2); print $2}' "$work/time.txt")
  tg_cpu=$(awk -F': ' '/User time/ {u=$2} /System time/ {s=$2} END {print u + s}' "$work/time.txt")
  printf 'run %s: %.3f s, %s requests, peak RSS %.1f MiB, CPU: tagguard %.2f s, registry %.2f s, proxy %.2f s\n' \
    "$run" "$t" "$requests" "$(echo "$rss_kib / 1024" | bc -l)" "$tg_cpu" "$(echo "$(reg_cpu) - $cpu_before" | bc -l)" \
    "$(echo "$(proxy_cpu) - $proxy_before" | bc -l)"
done
python3 - "$work/audit.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
i = r["images"][0]
print(f"tags {i['tags']}, audited {i['audited']}, records {i['records']}, findings {len(r['findings'])}")
PY
median=$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
printf 'median of %s: %.3f s\n' "$runs" "$median"
