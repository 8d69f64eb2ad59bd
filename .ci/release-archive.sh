#!/usr/bin/env bash
# Packs a release binary under the name action.yml and the GitLab template download:
#
#   .ci/release-archive.sh VERSION TARGET BINARY OUTDIR
#
# writes OUTDIR/tagguard-VERSION-TARGET.tar.gz (tagguard at the top, with the README, the licenses and the
# CHANGELOG) and OUTDIR/tagguard-VERSION-TARGET.tar.gz.sha256 ("<hex>  <file name>", as
# sha256sum writes it). Runs on Linux and macOS runners (.github/workflows/release.yml) and in
# the action's tests (tests/it/action.rs).
set -euo pipefail
[[ $# -eq 4 ]] || { echo "usage: $0 VERSION TARGET BINARY OUTDIR" >&2; exit 2; }
version=$1 target=$2 binary=$3 out=$4
root="$(cd "$(dirname "$0")/.." && pwd)"
name="tagguard-$version-$target.tar.gz"

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cp "$binary" "$stage/tagguard"
chmod 755 "$stage/tagguard"
cp "$root/README.md" "$root/CHANGELOG.md" "$root/LICENSE-MIT" "$root/LICENSE-APACHE" "$stage/"
mkdir -p "$out"
tar -czf "$out/$name" -C "$stage" tagguard README.md CHANGELOG.md LICENSE-MIT LICENSE-APACHE
if command -v sha256sum >/dev/null 2>&1; then
  (cd "$out" && sha256sum "$name" >"$name.sha256")
else
  (cd "$out" && shasum -a 256 "$name" >"$name.sha256")
fi
echo "$out/$name"
