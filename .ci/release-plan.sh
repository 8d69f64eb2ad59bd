#!/usr/bin/env bash
# The release workflow's first step (.github/workflows/release.yml, job `plan`):
#
#   .ci/release-plan.sh TAG OUTPUT
#
# refuses a tag that does not name Cargo.toml's version, a CHANGELOG.md without that version's
# section (it becomes the release notes), and a checkout whose release-checksums.sha256 misses
# an earlier release or disagrees with the GitLab template's copy (the action and the template
# of this release verify downloads against them: each release's `record` job writes them, in a
# pull request that must be merged first), with a workflow `::error::` on stdout; otherwise
# appends `version=X.Y.Z` to OUTPUT ($GITHUB_OUTPUT). Run from the repository root.
set -euo pipefail
[[ $# -eq 2 ]] || { echo "usage: $0 TAG OUTPUT" >&2; exit 2; }
tag=$1 output=$2
version="$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)"
if [[ "$tag" != "v$version" ]]; then
  echo "::error::the tag $tag does not name Cargo.toml's version $version: bump Cargo.toml (and action.yml's version default) first"
  exit 1
fi
if ! grep -q "^## \[$version\]" CHANGELOG.md; then
  echo "::error::CHANGELOG.md has no section '## [$version]' for the release notes: rename '## [Unreleased]'"
  exit 1
fi
# Released before release-checksums.sha256 existed: no checksums to record, no attestations.
before_table="0.1.0"
table=release-checksums.sha256
template=templates/gitlab/tagguard.gitlab-ci.yml
for earlier in $(sed -n 's/^## \[\([0-9][^]]*\)\].*/\1/p' CHANGELOG.md); do
  [[ "$earlier" == "$version" || " $before_table " == *" $earlier "* ]] && continue
  if ! grep -q "  tagguard-$earlier-.*\.tar\.gz\$" "$table"; then
    echo "::error::$table has no checksums of the earlier release $earlier: merge the pull request its release opened (branch checksums/v$earlier) first, or this release's action cannot verify $earlier"
    exit 1
  fi
done
copy=$(awk '/# release-checksums: end/ { on = 0 } on && /^      / { print substr($0, 7) } /# release-checksums: begin/ { on = 1 }' "$template")
if [[ "$copy" != "$(cat "$table")" ]]; then
  echo "::error::$template's TAGGUARD_CHECKSUMS is not a copy of $table: .ci/release-record.sh writes both"
  exit 1
fi
echo "version=$version" >>"$output"
