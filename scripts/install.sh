#!/bin/sh
# Installs ferry's single executable (built by `npm run sea` into dist/sea/ferry) and its
# service files, like `make install`:
#
#   npm run sea && sudo scripts/install.sh                 # /usr/local/bin/ferry, /etc/...
#   PREFIX=/opt/ferry DESTDIR=/tmp/pkgroot scripts/install.sh   # staged, for a package
#
#   PREFIX      where bin/ferry goes                        (default /usr/local)
#   DESTDIR     staging root prepended to every path        (default empty)
#   SYSCONFDIR  where ferry/, cron.d/ go                    (default /etc)
#   UNITDIR     where ferry-agent.service goes              (default SYSCONFDIR/systemd/system)
#   FERRY_BIN   the executable to install                   (default dist/sea/ferry)
#
# The unit's ExecStart and the cron file's PATH name PREFIX/bin/ferry, and both read their
# lists from SYSCONFDIR/ferry. Existing files under
# SYSCONFDIR/ferry (your agent.yaml and images.yaml) are kept. Each file is written beside its
# destination and renamed over it, so an interrupted install leaves the old file or the new one.
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
PREFIX=${PREFIX:-/usr/local}
DESTDIR=${DESTDIR:-}
SYSCONFDIR=${SYSCONFDIR:-/etc}
UNITDIR=${UNITDIR:-$SYSCONFDIR/systemd/system}
FERRY_BIN=${FERRY_BIN:-$here/dist/sea/ferry}

if [ ! -x "$FERRY_BIN" ]; then
  echo "install.sh: $FERRY_BIN is not built; run \`npm run sea\` first (or set FERRY_BIN)" >&2
  exit 2
fi

work=$(mktemp -d)
tmp=""
# A killed install removes its temp files; the destinations hold old or new files, never half.
trap 'rm -rf "$work"; if [ -n "$tmp" ]; then rm -f "$tmp"; fi' EXIT
trap 'exit 130' INT TERM HUP

# put MODE SOURCE DEST: copies SOURCE to DEST atomically (temp file + rename).
put() {
  mkdir -p "$(dirname "$3")"
  tmp="$3.tmp-$$"
  cp "$2" "$tmp"
  chmod "$1" "$tmp"
  mv -f "$tmp" "$3"
  tmp=""
  echo "installed $3"
}

# keep MODE SOURCE DEST: as put, unless DEST exists (configuration the admin may have edited).
keep() {
  if [ -e "$3" ]; then echo "kept      $3"; else put "$@"; fi
}

sed -e "s|^ExecStart=/usr/local/bin/ferry |ExecStart=$PREFIX/bin/ferry |" \
  -e "s| /etc/ferry/| $SYSCONFDIR/ferry/|g" \
  "$here/deploy/systemd/ferry-agent.service" > "$work/ferry-agent.service"
sed -e "s|^PATH=|PATH=$PREFIX/bin:|" -e "s| /etc/ferry/| $SYSCONFDIR/ferry/|g" \
  "$here/deploy/cron/ferry-warm" > "$work/ferry-warm"

put 0755 "$FERRY_BIN" "$DESTDIR$PREFIX/bin/ferry"
put 0644 "$work/ferry-agent.service" "$DESTDIR$UNITDIR/ferry-agent.service"
put 0644 "$work/ferry-warm" "$DESTDIR$SYSCONFDIR/cron.d/ferry-warm"
keep 0644 "$here/deploy/agent.yaml" "$DESTDIR$SYSCONFDIR/ferry/agent.yaml"
keep 0644 "$here/deploy/images.yaml" "$DESTDIR$SYSCONFDIR/ferry/images.yaml"
