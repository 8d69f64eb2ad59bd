#!/usr/bin/env bash
# A/B: two tagguard binaries through the same benchmarks in one session, alternated (A B, then
# B A, ...) so both see the same machine load: check.sh, push.sh (part 1 retag, part 2 copy)
# and fanout.sh, ROUNDS times. Each tagguard process runs under `perf stat -e task-clock` (its
# own CPU, millisecond resolution; /usr/bin/time when perf is missing), and /proc/loadavg is
# recorded before every script. Every script's output is kept in OUT; `ab.py OUT` prints the
# medians and ranges per binary.
#
# Usage: scripts/bench/ab.sh BIN_A BIN_B [OUT]   (OUT default: a new directory under /tmp)
# Env: ROUNDS (default 3), SCRIPTS (default "check push fanout"), and the scripts' own (RUNS,
#      PART, REPOS, TMPDIR, ...). First: cargo build --release --example delayproxy.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
[ $# -ge 2 ] || { echo "usage: $0 BIN_A BIN_B [OUT]" >&2; exit 2; }
a=$(realpath "$1") b=$(realpath "$2")
for bin in "$a" "$b"; do [ -x "$bin" ] || { echo "not an executable: $bin" >&2; exit 2; }; done
out=${3:-$(mktemp -d /tmp/ab.XXXXXX)}
mkdir -p "$out"
rounds=${ROUNDS:-3}
scripts=${SCRIPTS:-check push fanout}

# A wrapper per binary: the scripts run it as their tagguard; it records the subcommand, the
# policy file's name (which says which part of a script it is) and the CPU the process used.
wrap() { # LABEL BIN -> path of the wrapper
  local w=$out/tagguard-$1
  if command -v perf >/dev/null; then
    cat > "$w" <<SH
#!/usr/bin/env bash
policy=-; prev=
for arg in "\$@"; do [ "\$prev" = --policy ] && policy=\$(basename "\$arg"); prev=\$arg; done
f=\$(mktemp "$out/perf.XXXXXX")
code=0
perf stat -x, -e task-clock -o "\$f" -- "$2" "\$@" || code=\$?
ms=\$(awk -F, '/task-clock/ {print \$1}' "\$f"); rm -f "\$f"
echo "\${AB_SCRIPT:-?} \$1 \$policy \$ms" >> "$out/cpu.$1"
exit \$code
SH
  else
    cat > "$w" <<SH
#!/usr/bin/env bash
policy=-; prev=
for arg in "\$@"; do [ "\$prev" = --policy ] && policy=\$(basename "\$arg"); prev=\$arg; done
f=\$(mktemp "$out/time.XXXXXX")
code=0
/usr/bin/time -f '%U %S' -o "\$f" "$2" "\$@" || code=\$?
ms=\$(awk '{print (\$1 + \$2) * 1000}' "\$f"); rm -f "\$f"
echo "\${AB_SCRIPT:-?} \$1 \$policy \$ms" >> "$out/cpu.$1"
exit \$code
SH
  fi
  chmod +x "$w"
  echo "$w"
}
wa=$(wrap A "$a") wb=$(wrap B "$b")
{
  echo "A $a"
  echo "B $b"
  echo "rounds $rounds, scripts: $scripts, started $(date -u +%FT%TZ)"
} > "$out/README"

for r in $(seq "$rounds"); do
  order=(A B)
  [ $((r % 2)) -eq 0 ] && order=(B A)
  for s in $scripts; do
    for who in "${order[@]}"; do
      w=$([ "$who" = A ] && echo "$wa" || echo "$wb")
      echo "$s $who $r $(cut -d' ' -f1-3 /proc/loadavg)" >> "$out/load"
      AB_SCRIPT=$s "$here/$s.sh" "$w" > "$out/$s.$who.$r.out" 2> "$out/$s.$who.$r.err" ||
        echo "$s.sh with $who, round $r: exit $? (see $out/$s.$who.$r.err)" >&2
    done
  done
  echo "round $r of $rounds done $(date -u +%T), load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
done
python3 "$here/ab.py" "$out"
