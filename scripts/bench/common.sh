# Sourced by the benchmark scripts: a scratch directory removed on exit with every process the
# script started, and a loopback docker-registry behind a delay proxy (20 ms each way).
# Sets: $work, $pids, $reg (the registry's port; its access log is $work/registry.log) and
# $proxy (the proxy's port). Needs $here (the scripts' directory).
#
# The proxy is examples/delayproxy.rs (`cargo build --release --example delayproxy`): the same
# delay as delayproxy.py (each chunk 20 ms after it was read, each direction) at about a third
# of its CPU — on 2 cores the proxy's CPU is taken from the registry being measured (10,000
# requests: 0.7–0.9 s against 1.9–2.6 s). PROXY=py uses delayproxy.py.
# The registry runs with the config of the scripts before (no blob descriptor cache, log level
# info: the scripts read its access log and its `listening on` line); Debian's own config adds
# `cache: { blobdescriptor: inmemory }`, which made no difference here (1,000-tag fan-out
# push and 10,000-tag audit, registry CPU within ±5 %). REGISTRY_DEBUG=PORT serves Go's pprof
# there (`/debug/pprof/profile?seconds=N`), to see where the registry's CPU goes.
# The registry's storage is in $work, under $TMPDIR (default /tmp, a disk). distribution fsyncs
# every file it writes (a tag write: 6 fsyncs, counted with strace), so writes wait on the
# disk; TMPDIR=/dev/shm puts the storage in memory (measured, fan-out push of 1,000 tags:
# 6.8 s on this VM's disk, 4.6 s in memory). REGISTRY_DELETE=true enables deletes (prune --apply).
# KEEP_LOG=FILE copies the registry's log there on exit: its `response completed` lines name each
# request's connection (http.request.remoteaddr, the proxy's side of it) and the registry's own
# time for it (http.response.duration), to compare two binaries' request streams.
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -n "${KEEP_LOG:-}" ] && cp "$work/registry.log" "$KEEP_LOG"
  rm -rf "$work"
}
trap cleanup EXIT

wait_port() { # FILE -> prints the port once "listening on 127.0.0.1:PORT" appears
  for _ in $(seq 200); do
    p=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$1" 2>/dev/null | head -1 | cut -d: -f2) || true
    [ -n "${p:-}" ] && { echo "$p"; return; }
    sleep 0.05
  done
  echo "did not start: $1" >&2; exit 1
}

delayproxy=$here/../../target/release/examples/delayproxy
if [ "${PROXY:-rust}" != py ] && [ ! -x "$delayproxy" ]; then
  echo "build the delay proxy first: cargo build --release --example delayproxy (or PROXY=py)" >&2
  exit 2
fi

debug=
[ -n "${REGISTRY_DEBUG:-}" ] && debug=", debug: { addr: \"127.0.0.1:$REGISTRY_DEBUG\" }"
cat > "$work/registry.yml" <<YML
version: 0.1
log: { level: info, formatter: text }
storage: { filesystem: { rootdirectory: $work/data }, delete: { enabled: ${REGISTRY_DELETE:-false} } }
http: { addr: "127.0.0.1:0", secret: bench $debug }
YML
/usr/bin/docker-registry serve "$work/registry.yml" > "$work/registry.log" 2>&1 & pids+=($!)
reg=$(wait_port "$work/registry.log")
if [ "${PROXY:-rust}" = py ]; then
  python3 "$here/delayproxy.py" 0 "$reg" 20 > "$work/proxy.log" 2>&1 & pids+=($!)
else
  "$delayproxy" 0 "$reg" 20 > "$work/proxy.log" 2>&1 & pids+=($!)
fi
proxy=$(wait_port "$work/proxy.log")
