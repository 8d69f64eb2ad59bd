#!/usr/bin/env bash
# Builds tagguard's container image from this checkout without pulling anything:
#
#   scripts/container-image.sh TAG [--binary PATH]
#
# FROM scratch: a static tagguard binary (built here with glibc and crt-static, or the static
# binary given with --binary, e.g. a release's musl build), the CA certificates of this
# machine, a non-root user (65532) and busybox's shell and tools under /busybox, because CI
# systems such as GitLab run their job scripts with a shell inside the image. The OCI labels
# are the ones tagguard computes for this checkout (`tagguard tags --format json`).
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { echo "usage: $0 TAG [--binary PATH]" >&2; exit 2; }
[[ $# -ge 1 && "$1" != -* ]] || usage
tag=$1
shift
binary=
while [[ $# -gt 0 ]]; do
  case "$1" in
    --binary) [[ $# -ge 2 ]] || usage; binary=$2; shift 2 ;;
    *) usage ;;
  esac
done

certs=/etc/ssl/certs/ca-certificates.crt
busybox=${BUSYBOX:-/bin/busybox}
[[ -r "$certs" ]] || { echo "$certs is missing: install the ca-certificates package" >&2; exit 1; }
if ! [[ -x "$busybox" ]] || readelf -d "$busybox" 2>/dev/null | grep -q NEEDED; then
  echo "$busybox is not a static busybox: install busybox-static (or set BUSYBOX)" >&2
  exit 1
fi

if [[ -z "$binary" ]]; then
  target="$(uname -m)-unknown-linux-gnu"
  echo "building a static tagguard for $target (cargo build --release)" >&2
  RUSTFLAGS="${RUSTFLAGS:+$RUSTFLAGS }-C target-feature=+crt-static" \
    cargo build --release --locked --target "$target"
  binary="target/$target/release/tagguard"
fi
if readelf -d "$binary" | grep -q NEEDED; then
  echo "$binary links shared libraries; a FROM scratch image needs a static binary" >&2
  exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root="$work/root"
mkdir -p "$root/usr/local/bin" "$root/etc/ssl/certs" "$root/busybox" "$root/bin" "$root/tmp" \
  "$work/home"
cp "$binary" "$root/usr/local/bin/tagguard"
cp "$certs" "$root/etc/ssl/certs/ca-certificates.crt"
cp "$busybox" "$root/busybox/busybox"
for applet in $("$busybox" --list); do
  [[ "$applet" == busybox ]] || ln -s busybox "$root/busybox/$applet"
done
ln -s /busybox/sh "$root/bin/sh"
chmod 1777 "$root/tmp"
printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' \
  'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' >"$root/etc/passwd"
printf '%s\n' 'root:x:0:' 'nonroot:x:65532:' >"$root/etc/group"

# The labels describe the checkout (revision, version, created, source); a dirty work tree still
# gets its HEAD's labels, since nothing is tagged here.
labels=$("$binary" tags --format json --allow-dirty --policy .tagguard.yml |
  python3 -c 'import json, sys; [print(f"{k}={v}") for k, v in json.load(sys.stdin)["labels"].items()]')
label_args=()
while IFS= read -r label; do
  [[ -n "$label" ]] && label_args+=(--label "$label")
done <<<"$labels"
label_args+=(--label "org.opencontainers.image.title=tagguard"
  --label "org.opencontainers.image.description=Compute container image tags from git, CI and SemVer, and refuse to overwrite immutable tags"
  --label "org.opencontainers.image.licenses=MIT OR Apache-2.0")

cat >"$work/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY root/ /
COPY --chown=65532:65532 home/ /home/nonroot/
ENV PATH=/usr/local/bin:/busybox \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    HOME=/home/nonroot
USER 65532:65532
WORKDIR /home/nonroot
ENTRYPOINT ["/usr/local/bin/tagguard"]
DOCKERFILE

docker build --quiet "${label_args[@]}" -t "$tag" "$work" >/dev/null
size=$(docker image inspect --format '{{.Size}}' "$tag")
echo "built $tag ($((size / 1024 / 1024)) MiB)"
