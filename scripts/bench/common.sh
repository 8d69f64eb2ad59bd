# Sourced by the benchmark scripts: a scratch directory removed on exit with every process the
# script started, and a loopback docker-registry behind delayproxy.py (20 ms each way).
# Sets: $work, $pids, $reg (the registry's port; its access log is $work/registry.log) and
# $proxy (the proxy's port). Needs $here (the scripts' directory).
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

wait_port() { # FILE -> prints the port once "listening on 127.0.0.1:PORT" appears
  for _ in $(seq 200); do
    p=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$1" 2>/dev/null | head -1 | cut -d: -f2) || true
    [ -n "${p:-}" ] && { echo "$p"; return; }
    sleep 0.05
  done
  echo "did not start: $1" >&2; exit 1
}

cat > "$work/registry.yml" <<YML
version: 0.1
log: { level: info, formatter: text }
storage: { filesystem: { rootdirectory: $work/data } }
http: { addr: "127.0.0.1:0", secret: bench }
YML
/usr/bin/docker-registry serve "$work/registry.yml" > "$work/registry.log" 2>&1 & pids+=($!)
reg=$(wait_port "$work/registry.log")
python3 "$here/delayproxy.py" 0 "$reg" 20 > "$work/proxy.log" 2>&1 & pids+=($!)
proxy=$(wait_port "$work/proxy.log")
