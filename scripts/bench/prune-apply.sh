# Sourced by prune.sh with APPLY=1 (see its header): per run, `tagguard prune --apply` on one
# repository and the peer's sequential deletes on its twin, through the same delay proxy, with
# the load average before each (the machine is shared).
gone=${GONE:-1000}
for run in $(seq "$runs"); do
  for repo in "acme/app-$run" "acme/peer-$run"; do
    seed "$repo"
    python3 "$here/prune.py" "$reg" "$repo" 9999 "$gone" "$work/digests-${repo#acme/}" >/dev/null
  done
  before=$(count)
  reg_before=$(cpu "${pids[0]}")
  load=$(cut -d' ' -f1-3 /proc/loadavg)
  start=$(date +%s.%N)
  /usr/bin/time -v -o "$work/time.txt" "$bin" prune --apply --image "127.0.0.1:$proxy/acme/app-$run" \
    --format json --now 2100-01-01T00:00:00Z ${CONCURRENCY:+--concurrency "$CONCURRENCY"} > "$work/apply.json" \
    || { echo "prune --apply failed:" >&2; head -c 2000 "$work/apply.json" >&2; exit 1; }
  t=$(echo "$(date +%s.%N) - $start" | bc)
  requests=$(( $(count) - before ))
  summary=$(python3 - "$work/apply.json" "$gone" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
tags = sum(1 for d in r["deleted"] if d["tag"])
digests = sum(1 for d in r["deleted"] if not d["tag"])
assert tags == int(sys.argv[2]) and not r["not_deleted"], (tags, r["not_deleted"][:3])
print(f"{tags} tags, {digests} manifests deleted")
PY
)
  rss_kib=$(awk -F: '/Maximum resident/ {gsub(/ /,"",$2); print $2}' "$work/time.txt")
  tg_cpu=$(awk -F': ' '/User time/ {u=$2} /System time/ {s=$2} END {print u + s}' "$work/time.txt")
  printf 'run %s: tagguard prune --apply %.3f s (%s; %s requests, peak RSS %.1f MiB; CPU: tagguard %.2f s, registry %.2f s; load %s)\n' \
    "$run" "$t" "$summary" "$requests" "$(echo "$rss_kib / 1024" | bc -l)" "$tg_cpu" \
    "$(echo "$(cpu "${pids[0]}") - $reg_before" | bc -l)" "$load"
  before=$(count)
  reg_before=$(cpu "${pids[0]}")
  load=$(cut -d' ' -f1-3 /proc/loadavg)
  start=$(date +%s.%N)
  while read -r d; do
    curl -sf -X DELETE -o /dev/null "http://127.0.0.1:$proxy/v2/acme/peer-$run/manifests/$d"
  done < "$work/digests-peer-$run"
  t=$(echo "$(date +%s.%N) - $start" | bc)
  printf 'run %s: peer, sequential curl DELETE by digest %.3f s (%s requests; CPU: registry %.2f s; load %s)\n' \
    "$run" "$t" "$(( $(count) - before ))" "$(echo "$(cpu "${pids[0]}") - $reg_before" | bc -l)" "$load"
  left=$(curl -sf "http://127.0.0.1:$reg/v2/acme/app-$run/tags/list" | python3 -c \
    'import json,sys; t=json.load(sys.stdin)["tags"]; print(sum(1 for x in t if not x.startswith("sha256-")))')
  [ "$left" = $((10000 - gone)) ] || { echo "run $run: $left tags left, not $((10000 - gone))" >&2; exit 1; }
done
