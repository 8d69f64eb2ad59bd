#!/usr/bin/env bash
# Benchmark `tagguard check` of 10 tags (2 images x 5 tags of the default policy) against
# `skopeo inspect --raw` run once per tag, both through a proxy adding 20 ms each way (common.sh)
# in front of a local registry (docker-registry, plain HTTP on loopback). Prints wall times, the
# registry's request counts and tagguard's peak RSS. Goals (issue 3): <= 0.20 s, >= 10x faster
# than skopeo, <= 20 MiB.
#
# Needs: docker-registry, skopeo, umoci, python3, /usr/bin/time (Debian: time), git.
# Usage: scripts/bench/check.sh [path/to/tagguard]   (default: target/release/tagguard)
#        First: cargo build --release --example delayproxy (or PROXY=py, see common.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${1:-$here/../../target/release/tagguard}
[ -x "$bin" ] || { echo "build it first: cargo build --release" >&2; exit 2; }
# shellcheck source=common.sh
source "$here/common.sh"

# The build: a git repository at release v1.4.2 (default policy: 1.4.2, 1.4, 1, latest, sha-…).
repo=$work/repo
git init -q "$repo"
git -C "$repo" -c user.name=b -c user.email=b@b commit -q --allow-empty -m init
git -C "$repo" tag v1.4.2
export HOME=$work GIT_CONFIG_NOSYSTEM=1
mapfile -t tags < <("$bin" tags --repo "$repo" --timestamp 20240102030405)

umoci init --layout "$work/oci" >/dev/null
umoci new --image "$work/oci:img" >/dev/null
push() { skopeo copy -q --dest-tls-verify=false "oci:$work/oci:img" "docker://127.0.0.1:$reg/$1" >/dev/null; }
push ci/build:b1
for t in "${tags[@]:0:3}"; do push "acme/app:$t"; done

count() { grep -c '" [0-9][0-9][0-9] ' "$work/registry.log" || true; }
images="127.0.0.1:$proxy/acme/app,127.0.0.1:$proxy/acme/lib"

before=$(count)
start=$(date +%s.%N)
/usr/bin/time -v -o "$work/time.txt" "$bin" check --repo "$repo" --timestamp 20240102030405 \
  --image "$images" --source "127.0.0.1:$proxy/ci/build:b1" --format json > "$work/check.json" || [ $? -eq 3 ]
end=$(date +%s.%N)
tg_time=$(echo "$end - $start" | bc)
tg_requests=$(( $(count) - before ))
rss_kib=$(awk -F: '/Maximum resident/ {gsub(/ /,"",$2); print $2}' "$work/time.txt")
lookups=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["decisions"]))' "$work/check.json")

before=$(count)
start=$(date +%s.%N)
for image in acme/app acme/lib; do
  for t in "${tags[@]}"; do
    skopeo inspect --raw --tls-verify=false "docker://127.0.0.1:$proxy/$image:$t" >/dev/null 2>&1 || true
  done
done
skopeo inspect --raw --tls-verify=false "docker://127.0.0.1:$proxy/ci/build:b1" >/dev/null
end=$(date +%s.%N)
sk_time=$(echo "$end - $start" | bc)
sk_requests=$(( $(count) - before ))

printf 'tags looked up:          %s (+1 source)\n' "$lookups"
printf 'tagguard check:          %.3f s, %s requests, peak RSS %.1f MiB\n' "$tg_time" "$tg_requests" "$(echo "$rss_kib / 1024" | bc -l)"
printf 'skopeo inspect per tag:  %.3f s, %s requests\n' "$sk_time" "$sk_requests"
printf 'speed-up:                %.1fx\n' "$(echo "$sk_time / $tg_time" | bc -l)"
