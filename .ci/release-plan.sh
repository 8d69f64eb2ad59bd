#!/usr/bin/env bash
# The release workflow's first step (.github/workflows/release.yml, job `plan`):
#
#   .ci/release-plan.sh TAG OUTPUT
#
# refuses a tag that does not name Cargo.toml's version, and a CHANGELOG.md without that
# version's section (it becomes the release notes), with a workflow `::error::` on stdout;
# otherwise appends `version=X.Y.Z` to OUTPUT ($GITHUB_OUTPUT). Run from the repository root.
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
echo "version=$version" >>"$output"
