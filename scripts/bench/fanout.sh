#!/usr/bin/env bash
# Benchmark a fan-out: one source image to 100 repositories x 10 tags (a policy whose `images:`
# lists 100 repositories, the 10-rule policy of push.sh at release v1.4.2), through a delay proxy
# (20 ms each way, common.sh) in front of a loopback docker-registry, TAGGUARD_SETTLE=0:
#   1. `tagguard check` (every repository new: nothing there yet),
#   2. `tagguard push` (100 repositories get the image by blob mounts, 1,000 tag writes),
#   3. `tagguard check` again (every tag there now: 1,000 tags to compare),
# each with its wall time, exit code, the registry's requests, peak RSS and the CPU time of
# tagguard, the registry and the proxy (they share the machine's cores; the first push's requests
# are listed by kind); and skopeo copying the same source to the first repository's 10 tags (one
# copy per tag) in the same run, with that time x 100 as what skopeo would take for the whole
# fan-out.
# Goals (issue 13): check <= 1.0 s, push <= 3.0 s, all exit 0, peak RSS <= 64 MiB.
#
# Needs: docker-registry, skopeo, python3, bc, /usr/bin/time (Debian: time), git.
# Usage: scripts/bench/fanout.sh [path/to/tagguard]   (default: target/release/tagguard)
#        First: cargo build --release --example delayproxy (or PROXY=py, see common.sh).
# Env: REPOS (default 100), RUNS (default 3: a fresh set of repositories per run), RECORDS=0 (a
# policy with `audit: { record: false }`: the push writes no records for `tagguard audit`).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${1:-$here/../../target/release/tagguard}
[ -x "$bin" ] || { echo "build it first: cargo build --release" >&2; exit 2; }
repos=${REPOS:-100}
runs=${RUNS:-3}
# shellcheck source=common.sh
source "$here/common.sh"
export HOME=$work GIT_CONFIG_NOSYSTEM=1 TAGGUARD_SETTLE=0
nreq() { python3 "$here/reqcount.py" "$work/registry.log" 0 | awk '/^total/ {print $2}'; }
now() { date +%s.%N; }
rss_mib() { awk -F: '/Maximum resident/ {gsub(/ /,"",$2); printf "%.1f", $2/1024}' "$1"; }
# CPU seconds a process has used: registry, proxy and tagguard share the machine's cores.
cpu() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

repo=$work/repo
git init -q "$repo"
git -C "$repo" -c user.name=b -c user.email=b@b commit -q --allow-empty -m init
git -C "$repo" tag v1.4.2
build=(--repo "$repo" --timestamp 20240102030405 --build-id 4242 --build-number 7)
read -r small _ < <(python3 "$here/mkimage.py" "$work/small" 1 4096)
skopeo copy -q --dest-tls-verify=false "oci:$work/small:img" "docker://127.0.0.1:$reg/ci/build:b1" >/dev/null
src="127.0.0.1:$proxy/ci/build@$small"

policy() { # RUN -> a policy for fresh repositories fanN/app000..
  echo "version: 1"
  echo "images:"
  for k in $(seq -w 0 $((repos - 1))); do echo "  - 127.0.0.1:$proxy/fan$1/app$k"; done
  cat <<'YML'
release: { git-tag: "v{version}" }
tags:
  - { template: "{{ version }}", when: release }
  - { template: "v{{ version }}", when: release }
  - { template: "{{ version }}-{{ short_sha }}", when: release }
  - { template: "{{ major }}.{{ minor }}", when: stable-release, floating: minor }
  - { template: "{{ major }}", when: stable-release, floating: major }
  - { template: latest, when: stable-release, floating: latest }
  - "sha-{{ short_sha }}"
  - "sha-{{ sha }}"
  - '{{ timestamp }}-{{ build_id | default("0") }}'
  - 'build-{{ build_number | default("0") }}'
YML
  # RECORDS=0: no audit records (issue 13's goal was set before pushes wrote them).
  [ "${RECORDS:-1}" = 0 ] && echo "audit: { record: false }"
  true
}

run() { # NAME RUN COMMAND... -> appends "seconds rss requests exit cpu:tagguard,registry,proxy" to $work/NAME
  local name=$1 i=$2; shift 2
  local before after start end code=0 reg0 proxy0
  before=$(nreq)
  reg0=$(cpu "${pids[0]}") proxy0=$(cpu "${pids[1]}")
  start=$(now)
  /usr/bin/time -v -o "$work/time.txt" "$bin" "$@" --policy "$work/policy$i.yml" "${build[@]}" \
    --source "$src" --format json > "$work/$name$i.json" 2> "$work/$name$i.err" || code=$?
  end=$(now)
  local used
  used=$(awk -F': ' '/User time/ {u=$2} /System time/ {s=$2} END {printf "%.2f", u + s}' "$work/time.txt")
  used="$used,$(echo "$(cpu "${pids[0]}") - $reg0" | bc),$(echo "$(cpu "${pids[1]}") - $proxy0" | bc)"
  sleep 0.3
  after=$(nreq)
  echo "$(echo "$end - $start" | bc) $(rss_mib "$work/time.txt") $((after - before)) $code $used" >> "$work/$name"
  python3 "$here/reqcount.py" "$work/registry.log" "$before" "$after" > "$work/$name$i.requests"
}

for i in $(seq "$runs"); do
  policy "$i" > "$work/policy$i.yml"
  run check1 "$i" check
  run push "$i" push
  written=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["written"]))' "$work/push$i.json")
  [ "$written" -eq $((repos * 10)) ] || { echo "run $i: push wrote $written tags" >&2; tail -5 "$work/push$i.err" >&2; }
  run check2 "$i" check
done

mapfile -t tags < <("$bin" tags --policy "$work/policy1.yml" "${build[@]}")
start=$(now)
for t in "${tags[@]}"; do
  skopeo copy -q --src-tls-verify=false --dest-tls-verify=false \
    "docker://$src" "docker://127.0.0.1:$proxy/skopeo/app000:$t" >/dev/null
done
end=$(now)
sk=$(echo "$end - $start" | bc)

echo "== fan-out: 1 source -> $repos repositories x ${#tags[@]} tags, 20 ms each way, TAGGUARD_SETTLE=0; $runs runs"
row() { # FILE LABEL
  printf '%-44s median %.3f s (runs: %s); peak RSS median %s MiB; requests %s; exit codes %s\n' "$2" \
    "$(cut -d' ' -f1 "$work/$1" | median)" "$(cut -d' ' -f1 "$work/$1" | xargs printf '%.3f ' | sed 's/ $//')" \
    "$(cut -d' ' -f2 "$work/$1" | median)" "$(cut -d' ' -f3 "$work/$1" | median)" "$(cut -d' ' -f4 "$work/$1" | sort -u | xargs)"
  printf '%-44s CPU s tagguard,registry,proxy per run: %s\n' "" "$(cut -d' ' -f5 "$work/$1" | xargs)"
}
row check1 "tagguard check (repositories new)"
row push "tagguard push ($((repos * 10)) tag writes)"
row check2 "tagguard check (every tag there)"
echo "requests of the first push, by kind:"
sed 's/^/  /' "$work/push1.requests"
printf 'skopeo copy once per tag, 1 repository:       %.3f s; x %d repositories = %.1f s\n' "$sk" "$repos" \
  "$(echo "$sk * $repos" | bc -l)"
