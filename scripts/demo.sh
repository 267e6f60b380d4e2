#!/usr/bin/env bash
# Offline demo: start a local Distribution registry, push two small images that share a
# layer, then pull them with ferry into a fresh store (second pull skips the shared layer,
# a repeat pull downloads nothing), list and inspect them, and stop everything.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/services.sh install
work=$(mktemp -d /tmp/ferry-demo.XXXXXX)
cleanup() {
  bash scripts/services.sh registry stop "$work/registry" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/registry"
host=$(bash scripts/services.sh registry start "$work/registry")
echo "== registry on $host; pushing demo images"
node scripts/demo-image.ts "$host"
export FERRY_STORE="$work/store"
ferry() { node bin/ferry.js "$@"; }
echo; echo "== ferry pull $host/demo/hello:1.0"
ferry pull "$host/demo/hello:1.0"
echo; echo "== ferry pull $host/demo/hello-extra:1.0   (shares the base layer)"
ferry pull "$host/demo/hello-extra:1.0"
echo; echo "== ferry pull $host/demo/hello:1.0   (again: nothing to download)"
ferry pull "$host/demo/hello:1.0"
echo; echo "== ferry images"
ferry images
echo; echo "== skopeo reads the store as a plain OCI layout"
skopeo inspect --raw "oci:$FERRY_STORE:$host/demo/hello:1.0" | head -c 300; echo
