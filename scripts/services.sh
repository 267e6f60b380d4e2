#!/usr/bin/env bash
# Real services for tests and the demo.
#   services.sh install               apt-get install docker-registry skopeo apache2-utils zstd
#                                     containerd runc docker.io busybox-static stargz-snapshotter (if missing)
#   services.sh registry start DIR    start a Distribution registry on 127.0.0.1, print its address
#   services.sh registry stop DIR     stop it
set -euo pipefail

die() {
  echo "services.sh: $*" >&2
  exit 1
}

usage() {
  sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

cmd_install() {
  local missing=()
  command -v docker-registry >/dev/null || missing+=(docker-registry)
  command -v skopeo >/dev/null || missing+=(skopeo)
  command -v htpasswd >/dev/null || missing+=(htpasswd)
  command -v zstd >/dev/null || missing+=(zstd)
  command -v containerd >/dev/null || missing+=(containerd)
  command -v runc >/dev/null || missing+=(runc)
  command -v dockerd >/dev/null || missing+=(docker.io)
  command -v ctr-remote >/dev/null || missing+=(stargz-snapshotter)
  # archive tests put a statically linked busybox into an image that dockerd runs
  dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q "ok installed" || missing+=(busybox-static)
  # Kubernetes mode: kubectl is the second client of the fake API server and renders kustomize
  command -v kubectl >/dev/null || missing+=(kubectl)
  # status page tests drive the system browser
  command -v chromium >/dev/null || missing+=(chromium)
  # lazy mounts: fusermount3 and the kernel's /dev/fuse
  command -v fusermount3 >/dev/null || missing+=(fuse3)
  # fleet tests and benchmarks: network namespaces, veth, bridge, tbf
  command -v ip >/dev/null || missing+=(iproute2)
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    die "missing: ${missing[*]}; installing needs root: sudo $0 install"
  fi
  echo "installing (missing: ${missing[*]})" >&2
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y docker-registry skopeo apache2-utils zstd \
    containerd runc docker.io busybox-static stargz-snapshotter kubectl chromium fuse3 iproute2
}

free_port() {
  if command -v python3 >/dev/null; then
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
  elif command -v node >/dev/null; then
    node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
  else
    die "need python3 or node to pick a free port"
  fi
}

# Exit status 0 when http://ADDR/v2/ answers 200 or 401.
answers() {
  local code
  code=$(curl -s -o /dev/null -m 1 -w '%{http_code}' "http://$1/v2/" 2>/dev/null) || true
  [ "$code" = 200 ] || [ "$code" = 401 ]
}

running_pid() {
  local dir=$1 pid
  [ -f "$dir/registry.pid" ] || return 1
  pid=$(cat "$dir/registry.pid")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  # A stale pid file may name an unrelated process by now.
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "docker-registry serve" || return 1
  echo "$pid"
}

registry_start() {
  local dir=$1
  command -v docker-registry >/dev/null || die "docker-registry is not installed (run: npm run services install)"
  command -v curl >/dev/null || die "curl is needed to wait for the registry"
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if running_pid "$dir" >/dev/null && [ -f "$dir/registry.addr" ]; then
    cat "$dir/registry.addr"
    return 0
  fi
  local attempt port addr pid i offset
  for attempt in 1 2 3 4 5; do
    offset=$(stat -c %s "$dir/registry.log" 2>/dev/null || echo 0)
    port=$(free_port)
    addr="127.0.0.1:$port"
    cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  level: info
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: "$dir/data"
  delete:
    enabled: true
http:
  addr: "$addr"
  secret: "ferry-services-secret"
EOF
    setsid docker-registry serve "$dir/config.yml" >>"$dir/registry.log" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$dir/registry.pid"
    for i in $(seq 1 200); do
      if answers "$addr"; then
        echo "$addr" >"$dir/registry.addr"
        echo "$addr"
        return 0
      fi
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.05
    done
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      rm -f "$dir/registry.pid"
      die "registry did not answer on $addr within 10 s; see $dir/registry.log"
    fi
    rm -f "$dir/registry.pid"
    tail -c +"$((offset + 1))" "$dir/registry.log" | grep -q "address already in use" || break
  done
  tail -n 15 "$dir/registry.log" >&2 || true
  die "registry exited during startup; see $dir/registry.log"
}

registry_stop() {
  local dir=$1 pid i
  if pid=$(running_pid "$dir"); then
    kill "$pid"
    for i in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.05
    done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$dir/registry.pid" "$dir/registry.addr"
}

case "${1:-}" in
install) cmd_install ;;
registry)
  [ $# -eq 3 ] || usage
  case "$2" in
  start) registry_start "$3" ;;
  stop) registry_stop "$3" ;;
  *) usage ;;
  esac
  ;;
*) usage ;;
esac
