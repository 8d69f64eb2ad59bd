#!/usr/bin/env bash
# Writes the shell completions and the man page a release attaches, from a tagguard binary
# that runs here:
#
#   .ci/release-extras.sh BINARY OUTDIR
#
# OUTDIR/tagguard.bash, _tagguard (zsh), tagguard.fish, _tagguard.ps1 (PowerShell),
# tagguard.elv (elvish) and tagguard.1 (`man ./tagguard.1`).
set -euo pipefail
[[ $# -eq 2 ]] || { echo "usage: $0 BINARY OUTDIR" >&2; exit 2; }
bin=$1 out=$2
mkdir -p "$out"
"$bin" completions bash >"$out/tagguard.bash"
"$bin" completions zsh >"$out/_tagguard"
"$bin" completions fish >"$out/tagguard.fish"
"$bin" completions powershell >"$out/_tagguard.ps1"
"$bin" completions elvish >"$out/tagguard.elv"
"$bin" man >"$out/tagguard.1"
for f in tagguard.bash _tagguard tagguard.fish _tagguard.ps1 tagguard.elv tagguard.1; do
  [[ -s "$out/$f" ]] || { echo "$out/$f is empty" >&2; exit 1; }
done
