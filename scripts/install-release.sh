# tagguard_install VERSION TARGET DIR: downloads a released tagguard archive, checks it against
# a checksum that did not come with the download, and unpacks the binary into DIR.
#
# POSIX sh, defines one function. action.yml sources this file; the GitLab template
# (templates/gitlab/tagguard.gitlab-ci.yml) holds the same text in its setup job, since a
# remote include cannot read other files (a test keeps the two identical). The environment:
#   TAGGUARD_RELEASE_URL     where releases live: <url>/v<version>/tagguard-<version>-<target>.tar.gz;
#                            https:// only, redirects included, unless it is an explicit http:// mirror
#   TAGGUARD_CHECKSUMS       the release checksums table ("<sha256>  <archive>" lines) that came
#                            with the action or template, not with the download
#   TAGGUARD_INSTALL_SHA256  the archive's SHA-256 from the pipeline's own configuration, for a
#                            release the table does not list yet
#   TAGGUARD_INSTALL_HELP    the ways out to name when the install fails
#   TAGGUARD_ERROR_PREFIX    put before each error line (::error:: in GitHub Actions)
#   GH_TOKEN                 with `gh` on PATH: a release the table does not list is verified by its
#                            build provenance (gh attestation verify) instead
# Nothing in the download vouches for itself: a `.sha256` next to the archive is not read.
tagguard_install() {
  tg_version=$1 tg_target=$2 tg_dir=$3
  tg_archive="tagguard-$tg_version-$tg_target.tar.gz"
  tg_base="${TAGGUARD_RELEASE_URL%/}"
  tg_url="$tg_base/v$tg_version/$tg_archive"
  # One line, the ways out included: a CI log or annotation may lose a failing step's last lines.
  tg_fail() {
    printf '%s\n' "${TAGGUARD_ERROR_PREFIX:-}tagguard: $*${TAGGUARD_INSTALL_HELP:+; $TAGGUARD_INSTALL_HELP}"
    return 1
  }
  case "$tg_base" in
    https://*) tg_proto='=https' ;;
    http://*) tg_proto='=http,https' ;; # an explicit plain-HTTP mirror, the user's choice
    *) tg_fail "the release URL must start with https:// (or http:// for a mirror on a network you trust), not '$tg_base'"; return 1 ;;
  esac

  # What vouches for the archive: the table that came with this action or template, and the
  # checksum the pipeline names; both must agree when both are there.
  tg_want=$(printf '%s\n' "${TAGGUARD_CHECKSUMS:-}" | awk -v n="$tg_archive" '$2 == n || $2 == "*" n { print $1; exit }')
  tg_given=$(printf '%s' "${TAGGUARD_INSTALL_SHA256:-}" | tr 'A-F' 'a-f' | tr -d ' \n')
  if [ -n "$tg_given" ] && [ -n "$tg_want" ] && [ "$tg_given" != "$tg_want" ]; then
    tg_fail "the SHA-256 given for $tg_archive ($tg_given) is not the one in the release checksums table ($tg_want): correct or remove the one given"
    return 1
  fi
  [ -n "$tg_want" ] || tg_want=$tg_given
  if [ -z "$tg_want" ] && ! { command -v gh >/dev/null 2>&1 && [ -n "${GH_TOKEN:-}" ]; }; then
    tg_fail "nothing vouches for $tg_archive: the release checksums table that came with this action or template does not list tagguard $tg_version, no SHA-256 was given, and gh with a token is not here to verify its build provenance; not installing it:" \
      "pin the action or template at a ref whose release-checksums.sha256 lists $tg_version (the v-major tag, moved by each release), or give the archive's SHA-256 (docs/verifying.md says how to get one you can trust)"
    return 1
  fi

  tg_work=$(mktemp -d) || { tg_fail "could not make a temporary directory"; return 1; }
  echo "downloading $tg_url"
  tg_err=$(curl --fail --silent --show-error --location --proto "$tg_proto" --proto-redir "$tg_proto" \
    --retry 3 --connect-timeout 20 --max-time 300 --max-filesize 268435456 \
    -o "$tg_work/$tg_archive" "$tg_url" 2>&1)
  tg_rc=$?
  if [ "$tg_rc" -ne 0 ]; then
    rm -rf "$tg_work"
    case "$tg_rc" in
      1) tg_why="a redirect to another protocol was refused (only https:// is followed from an https:// release URL)" ;;
      6) tg_why="the host name did not resolve" ;;
      7) tg_why="nothing answered" ;;
      22) tg_why="the server answered with an error (is tagguard $tg_version released for $tg_target at that URL?)" ;;
      60 | 35) tg_why="the TLS certificate or handshake failed" ;;
      *) tg_why="curl exit code $tg_rc" ;;
    esac
    tg_fail "could not download $tg_url: $tg_why ($(printf '%s' "$tg_err" | tr '\n' ' '))"
    return 1
  fi

  if [ -z "$tg_want" ]; then
    echo "verifying the build provenance of $tg_archive (gh attestation verify)"
    if ! gh attestation verify "$tg_work/$tg_archive" --repo tagguard/tagguard \
      --signer-workflow tagguard/tagguard/.github/workflows/release.yml \
      --source-ref "refs/tags/v$tg_version" --deny-self-hosted-runners; then
      rm -rf "$tg_work"
      tg_fail "$tg_archive from $tg_url has no valid build provenance from tagguard/tagguard's release workflow at v$tg_version (gh attestation verify failed): not installing it"
      return 1
    fi
  else
    if command -v sha256sum >/dev/null 2>&1; then
      tg_got=$(sha256sum "$tg_work/$tg_archive" | cut -d' ' -f1)
    else
      tg_got=$(shasum -a 256 "$tg_work/$tg_archive" | cut -d' ' -f1) # macOS
    fi
    if [ "$tg_got" != "$tg_want" ]; then
      rm -rf "$tg_work"
      tg_fail "$tg_archive downloaded from $tg_url has SHA-256 $tg_got, not $tg_want as released: not installing it (a replaced release asset, a mirror serving another file, or a proxy rewriting the download; see docs/verifying.md)"
      return 1
    fi
    echo "$tg_archive: SHA-256 $tg_got, as released"
  fi

  mkdir -p "$tg_dir" && tar -xzf "$tg_work/$tg_archive" -C "$tg_dir" tagguard
  tg_rc=$?
  rm -rf "$tg_work"
  [ "$tg_rc" -eq 0 ] || { tg_fail "could not unpack tagguard from $tg_archive into $tg_dir"; return 1; }
  tg_have=$("$tg_dir/tagguard" --version 2>&1)
  if [ "$tg_have" != "tagguard $tg_version" ]; then
    tg_fail "$tg_archive holds '$tg_have', not tagguard $tg_version"
    return 1
  fi
}
