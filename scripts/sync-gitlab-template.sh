#!/usr/bin/env bash
# Copies scripts/install-release.sh into templates/gitlab/tagguard.gitlab-ci.yml: the template's
# setup job holds it verbatim (a remote include cannot read other files), as the before_script
# item that starts with the script's first line. Run from anywhere after changing the script;
# tests/it/gitlab.rs fails while the two differ.
set -euo pipefail
cd "$(dirname "$0")/.."
script=scripts/install-release.sh
template=templates/gitlab/tagguard.gitlab-ci.yml
first=$(head -n 1 "$script")
grep -qF "      $first" "$template" || { echo "$template has no item starting with: $first" >&2; exit 1; }
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
# The item is "    - |" and the lines indented by 6 (or empty) after it; it is replaced whole.
awk -v script="$script" -v first="      $first" '
  pending != "" {
    if ($0 == first) {
      print pending
      while ((getline line < script) > 0) print (line == "" ? "" : "      " line)
      skip = 1; pending = ""; next
    }
    print pending; pending = ""
  }
  skip && ($0 == "" || $0 ~ /^      /) { next }
  { skip = 0 }
  $0 == "    - |" { pending = $0; next }
  { print }' "$template" >"$tmp"
cat "$tmp" >"$template"
