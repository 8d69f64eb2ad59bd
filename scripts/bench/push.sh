#!/usr/bin/env bash
# Benchmark `tagguard push` against skopeo, peers measured in the same run:
#
# 1. Retag behind a proxy adding 20 ms each way (examples/delayproxy.rs) in front of a local registry:
#    10 tags on 1 image (a 10-rule policy at release v1.4.2: 3 floating, 7 immutable) put on an
#    image already in the same repository, `tagguard push --source host/repo@sha256:…` vs
#    `skopeo copy docker://host/repo@sha256:… docker://host/repo:TAG` once per tag. A fresh
#    repository per run, so every tag is new. Wall time, the registry's requests by kind, peak
#    RSS; and the same push with recording off (`audit: { record: false }`), for what the record
#    costs. TAGGUARD_SETTLE=0 unless set (the settle time is a wait, not work: BENCHMARKS.md).
#    Goals (issue 13): <= 0.20 s, <= 0.035x skopeo; recording (issue 14): <= 1 round trip.
# 2. Cross-registry copy of a ~50 MB image (5 layers of 10 MiB random bytes, gzip'd tar, written
#    as an OCI layout and seeded into registry A with skopeo) to registry B, both plain HTTP on
#    loopback, no delay proxy: `tagguard push --source A/repo@digest --image B/repo` vs
#    `skopeo copy docker://A/repo@digest docker://B/repo:TAG`. Registry B is started afresh
#    (new data directory) before every copy, so nothing is there and nothing can be mounted.
#    Throughput = layer bytes / wall time; tagguard runs with `--settle 0` (the copy is measured,
#    not the settle wait). Goals (issue 13): >= 1.0x skopeo's throughput, <= 32 MiB peak RSS.
#
# Needs: docker-registry, skopeo, python3, bc, /usr/bin/time (Debian: time), git.
# Usage: scripts/bench/push.sh [path/to/tagguard]   (default: target/release/tagguard)
# Env: RUNS (default 5) runs of each part; PART=1|2 to run one part only; part 2's image shape
#      LAYERS (default 5) x LAYER_MIB (default 10); CHUNK_MIB (tagguard --chunk-size, default:
#      its own).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${1:-$here/../../target/release/tagguard}
[ -x "$bin" ] || { echo "build it first: cargo build --release" >&2; exit 2; }
runs=${RUNS:-5}
layers=${LAYERS:-5}
layer_mib=${LAYER_MIB:-10}
part=${PART:-all}
chunk=()
[ -n "${CHUNK_MIB:-}" ] && chunk=(--chunk-size "$CHUNK_MIB")
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
export HOME=$work GIT_CONFIG_NOSYSTEM=1

wait_port() { # FILE -> prints the port once "listening on 127.0.0.1:PORT" appears
  for _ in $(seq 200); do
    p=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$1" 2>/dev/null | head -1 | cut -d: -f2) || true
    [ -n "${p:-}" ] && { echo "$p"; return; }
    sleep 0.05
  done
  echo "did not start: $1" >&2; exit 1
}
registry() { # NAME -> starts a registry with data in $work/NAME, sets $port and $regpid
  mkdir -p "$work/$1"
  cat > "$work/$1.yml" <<YML
version: 0.1
log: { level: info, formatter: text }
storage: { filesystem: { rootdirectory: $work/$1/data } }
http: { addr: "127.0.0.1:0", secret: bench }
YML
  /usr/bin/docker-registry serve "$work/$1.yml" > "$work/$1.log" 2>&1 & regpid=$!
  pids+=("$regpid")
  port=$(wait_port "$work/$1.log")
}
nreq() { python3 "$here/reqcount.py" "$1" 0 | awk '/^total/ {print $2}'; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
now() { date +%s.%N; }
rss_mib() { awk -F: '/Maximum resident/ {gsub(/ /,"",$2); printf "%.1f", $2/1024}' "$1"; }

# The build: a git repository at release v1.4.2.
repo=$work/repo
git init -q "$repo"
git -C "$repo" -c user.name=b -c user.email=b@b commit -q --allow-empty -m init
git -C "$repo" tag v1.4.2
build=(--repo "$repo" --timestamp 20240102030405 --build-id 4242 --build-number 7)

if [ "$part" != 2 ]; then
  # 10 tags at a release: 3 floating (1.4, 1, latest), 7 immutable.
  cat > "$work/policy.yml" <<'YML'
version: 1
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
  { cat "$work/policy.yml"; printf 'audit: { record: false }\n'; } > "$work/norecord.yml"
  export TAGGUARD_SETTLE=${TAGGUARD_SETTLE:-0}
  mapfile -t tags < <("$bin" tags --policy "$work/policy.yml" "${build[@]}")
  [ "${#tags[@]}" -eq 10 ] || { echo "expected 10 tags, got ${#tags[@]}" >&2; exit 1; }

  registry r1; reg=$port
  # The same delay proxy as common.sh's: examples/delayproxy.rs (PROXY=py: delayproxy.py).
  if [ "${PROXY:-rust}" = py ]; then
    python3 "$here/delayproxy.py" 0 "$reg" 20 > "$work/proxy.log" 2>&1 & pids+=($!)
  else
    delayproxy=$here/../../target/release/examples/delayproxy
    [ -x "$delayproxy" ] || { echo "build the delay proxy first: cargo build --release --example delayproxy (or PROXY=py)" >&2; exit 2; }
    "$delayproxy" 0 "$reg" 20 > "$work/proxy.log" 2>&1 & pids+=($!)
  fi
  proxy=$(wait_port "$work/proxy.log")
  read -r small _ < <(python3 "$here/mkimage.py" "$work/small" 1 4096)
  seed() { skopeo copy -q --dest-tls-verify=false "oci:$work/small:img" "docker://127.0.0.1:$reg/$1" >/dev/null; }

  : > "$work/p1.tg"; : > "$work/p1.sk"; : > "$work/p1.nr"
  for i in $(seq "$runs"); do
    seed "bench/tg$i:seed"; seed "bench/sk$i:seed"; seed "bench/nr$i:seed"
    start=$(now)
    "$bin" push --policy "$work/norecord.yml" "${build[@]}" --image "127.0.0.1:$proxy/bench/nr$i" \
      --source "127.0.0.1:$proxy/bench/nr$i@$small" --format json > "$work/nr$i.json" 2> "$work/nr$i.err"
    end=$(now)
    echo "$end - $start" | bc >> "$work/p1.nr"
    src="127.0.0.1:$proxy/bench/tg$i@$small"
    before=$(nreq "$work/r1.log")
    start=$(now)
    /usr/bin/time -v -o "$work/time$i.txt" "$bin" push --policy "$work/policy.yml" "${build[@]}" \
      --image "127.0.0.1:$proxy/bench/tg$i" --source "$src" --format json > "$work/push$i.json" 2> "$work/push$i.err"
    end=$(now)
    sleep 0.2
    after=$(nreq "$work/r1.log")
    written=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["verified"]; print(len(d["written"]))' "$work/push$i.json")
    [ "$written" -eq 10 ] || { echo "tagguard wrote $written tags" >&2; exit 1; }
    echo "$(echo "$end - $start" | bc) $(rss_mib "$work/time$i.txt") $before $after" >> "$work/p1.tg"

    before=$(nreq "$work/r1.log")
    start=$(now)
    for t in "${tags[@]}"; do
      skopeo copy -q --src-tls-verify=false --dest-tls-verify=false \
        "docker://127.0.0.1:$proxy/bench/sk$i@$small" "docker://127.0.0.1:$proxy/bench/sk$i:$t" >/dev/null
    done
    end=$(now)
    sleep 0.2
    after=$(nreq "$work/r1.log")
    echo "$(echo "$end - $start" | bc) $before $after" >> "$work/p1.sk"
  done
  tg=$(cut -d' ' -f1 "$work/p1.tg" | median)
  sk=$(cut -d' ' -f1 "$work/p1.sk" | median)
  rss=$(cut -d' ' -f2 "$work/p1.tg" | median)
  nr=$(median < "$work/p1.nr")
  echo "== 1. retag: 10 tags, 1 image, same repository, behind a 20 ms-each-way proxy; $runs runs; TAGGUARD_SETTLE=$TAGGUARD_SETTLE"
  printf 'tagguard push:            median %.3f s (runs: %s), peak RSS median %s MiB\n' "$tg" \
    "$(cut -d' ' -f1 "$work/p1.tg" | xargs printf '%.3f ' | sed 's/ $//')" "$rss"
  printf 'the same, recording off:  median %.3f s (runs: %s); recording costs %.3f s\n' "$nr" \
    "$(xargs printf '%.3f ' < "$work/p1.nr" | sed 's/ $//')" "$(echo "$tg - $nr" | bc -l)"
  printf 'skopeo copy per tag (10): median %.3f s (runs: %s)\n' "$sk" \
    "$(cut -d' ' -f1 "$work/p1.sk" | xargs printf '%.3f ' | sed 's/ $//')"
  printf 'speed-up:                 %.1fx (tagguard / skopeo = %.3fx)\n' "$(echo "$sk / $tg" | bc -l)" \
    "$(echo "$tg / $sk" | bc -l)"
  read -r _ _ b a < <(tail -1 "$work/p1.tg")
  echo "tagguard's requests (last run), method / path kind / status / count:"
  python3 "$here/reqcount.py" "$work/r1.log" "$b" "$a" > "$work/tg.req"
  sed 's/^/  /' "$work/tg.req"
  # The protocol's requests (anonymous registry: no token): 1 source, N lookups, N writes, N
  # read-backs, the floating phase's re-checks and the tag list that places floating tags; the
  # record: referrers probe, fallback index GET and PUT, the record's PUT, the empty blob (HEAD,
  # and its upload the first time in a repository).
  n=${#tags[@]}
  total=$(awk '/^total/ {print $2}' "$work/tg.req")
  printf 'sent %d requests for %d tags\n' "$total" "$n"
  read -r _ b a < <(tail -1 "$work/p1.sk")
  echo "skopeo's requests (last run, 10 copies):"
  python3 "$here/reqcount.py" "$work/r1.log" "$b" "$a" | sed 's/^/  /'
fi

if [ "$part" != 1 ]; then
  read -r big bytes < <(python3 "$here/mkimage.py" "$work/big" "$layers" $((layer_mib << 20)))
  registry ra; rega=$port
  skopeo copy -q --dest-tls-verify=false "oci:$work/big:img" "docker://127.0.0.1:$rega/src/big:v1" >/dev/null
  cat > "$work/one.yml" <<'YML'
version: 1
tags: ["sha-{{ short_sha }}"]
YML
  tag=$("$bin" tags --policy "$work/one.yml" "${build[@]}")
  fresh_b() { # NAME: a new registry B, empty data directory, new port: sets $regb
    [ -n "${bpid:-}" ] && { kill "$bpid"; wait "$bpid" 2>/dev/null || true; rm -rf "$work/$blast"; }
    registry "$1"; regb=$port; bpid=$regpid; blast=$1
  }
  : > "$work/p2.tg"; : > "$work/p2.sk"
  for i in $(seq "$runs"); do
    fresh_b "rb$i-tg"
    start=$(now)
    /usr/bin/time -f '%M %U %S' -o "$work/t2.txt" "$bin" push --policy "$work/one.yml" "${build[@]}" \
      --settle 0 "${chunk[@]}" --image "127.0.0.1:$regb/copy/big" --source "127.0.0.1:$rega/src/big@$big" \
      --format json > "$work/copy$i.json" 2> "$work/copy$i.err"
    end=$(now)
    read -r m u s < "$work/t2.txt"
    echo "$(echo "$end - $start" | bc) $(echo "$m / 1024" | bc -l) $u $s" >> "$work/p2.tg"
    cp "$work/rb$i-tg.log" "$work/rb-tg.log"

    fresh_b "rb$i-sk"
    start=$(now)
    /usr/bin/time -f '%M %U %S' -o "$work/t2.txt" skopeo copy -q --src-tls-verify=false --dest-tls-verify=false \
      "docker://127.0.0.1:$rega/src/big@$big" "docker://127.0.0.1:$regb/copy/big:$tag" >/dev/null
    end=$(now)
    read -r m u s < "$work/t2.txt"
    echo "$(echo "$end - $start" | bc) $(echo "$m / 1024" | bc -l) $u $s" >> "$work/p2.sk"
    cp "$work/rb$i-sk.log" "$work/rb-sk.log"
  done
  mb=$(echo "$bytes / 1000000" | bc -l)
  tg=$(cut -d' ' -f1 "$work/p2.tg" | median)
  sk=$(cut -d' ' -f1 "$work/p2.sk" | median)
  echo "== 2. cross-registry copy, A -> B on loopback (no proxy): $(printf '%.1f' "$mb") MB in $layers layer(s) of $layer_mib MiB; $runs runs, fresh B each${CHUNK_MIB:+; tagguard --chunk-size $CHUNK_MIB}"
  for who in tg sk; do
    f=$work/p2.$who
    name=$([ "$who" = tg ] && echo "tagguard push" || echo "skopeo copy  ")
    t=$(cut -d' ' -f1 "$f" | median)
    printf '%s  median %.3f s = %.1f MB/s (runs: %s); peak RSS median %.1f MiB; CPU user+sys median %.2f s\n' \
      "$name" "$t" "$(echo "$mb / $t" | bc -l)" "$(cut -d' ' -f1 "$f" | xargs printf '%.3f ' | sed 's/ $//')" \
      "$(cut -d' ' -f2 "$f" | median)" "$(awk '{print $3 + $4}' "$f" | median)"
  done
  printf 'tagguard throughput / skopeo: %.2fx\n' "$(echo "$sk / $tg" | bc -l)"
  echo "registry B's requests, tagguard (last run):"
  python3 "$here/reqcount.py" "$work/rb-tg.log" 0 | sed 's/^/  /'
  echo "registry B's requests, skopeo (last run):"
  python3 "$here/reqcount.py" "$work/rb-sk.log" 0 | sed 's/^/  /'
fi
