#!/usr/bin/env bash
# The release's follow-up commit (.github/workflows/release.yml, job `record`): records what a
# release published where the action and the GitLab template read it, since the tag's own commit
# cannot hold the checksums of what was built from it.
#
#   .ci/release-record.sh VERSION DIST IMAGE_DIGEST
#
# appends "<sha256>  tagguard-VERSION-<target>.tar.gz" for every archive in DIST to
# release-checksums.sha256 (refusing a version already recorded with other checksums), copies
# the table into templates/gitlab/tagguard.gitlab-ci.yml's TAGGUARD_CHECKSUMS, and pins the
# template's image to ghcr.io/tagguard/tagguard:VERSION@IMAGE_DIGEST. Run from the repository
# root; `.ci/release-plan.sh` refuses a release whose template and table disagree.
set -euo pipefail
[[ $# -eq 3 ]] || { echo "usage: $0 VERSION DIST IMAGE_DIGEST" >&2; exit 2; }
version=$1 dist=$2 digest=$3
table=release-checksums.sha256
template=templates/gitlab/tagguard.gitlab-ci.yml
[[ "$digest" =~ ^sha256:[0-9a-f]{64}$ ]] || { echo "IMAGE_DIGEST must be sha256:<64 hex>, not '$digest'" >&2; exit 2; }

shopt -s nullglob
archives=("$dist"/tagguard-"$version"-*.tar.gz)
[[ ${#archives[@]} -gt 0 ]] || { echo "no tagguard-$version-*.tar.gz in $dist" >&2; exit 1; }
sum() { if command -v sha256sum >/dev/null; then sha256sum "$1"; else shasum -a 256 "$1"; fi | cut -d' ' -f1; }
touch "$table"
for path in "${archives[@]}"; do
  name=${path##*/} hex=$(sum "$path")
  recorded=$(awk -v n="$name" '$2 == n { print $1 }' "$table")
  if [[ -n "$recorded" && "$recorded" != "$hex" ]]; then
    echo "$table records $name as $recorded, but $path is $hex: a release is recorded once" >&2
    exit 1
  fi
  [[ -n "$recorded" ]] || printf '%s  %s\n' "$hex" "$name" >>"$table"
done

# The template's copy of the table, between its markers, and its image by digest.
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
awk -v table="$table" '
  /# release-checksums: begin/ {
    print; print "    TAGGUARD_CHECKSUMS: |"
    while ((getline line < table) > 0) print "      " line
    skip = 1; next
  }
  /# release-checksums: end/ { skip = 0 }
  !skip' "$template" >"$tmp"
sed -E "s|(name: ghcr\.io/tagguard/tagguard):[^[:space:]]*|\1:$version@$digest|" "$tmp" >"$template"
grep -q "ghcr.io/tagguard/tagguard:$version@$digest" "$template" || { echo "$template names no image to pin" >&2; exit 1; }
echo "recorded ${#archives[@]} archives of $version in $table and $template (image $digest)"
