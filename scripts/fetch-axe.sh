#!/usr/bin/env bash
# Put axe-core's axe.min.js (the accessibility engine the end-to-end test runs in Chromium) at
# a pinned version where the test looks for it: .venv/axe/axe.min.js, or the path given.
#
#   scripts/fetch-axe.sh [DEST]
#
# Only the npm registry is contacted, through `npm pack`, and the tarball is checked against
# the pinned integrity hash before anything is unpacked. Idempotent: nothing is fetched when
# DEST already holds this version. axe-core is MPL-2.0; its licence is kept next to it.
set -euo pipefail

AXE_VERSION=4.14.1
AXE_INTEGRITY=sha512-FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtuFooJpZe37OgudVGtQ==

cd "$(dirname "$0")/.."
dest=${1:-.venv/axe/axe.min.js}
dir=$(dirname "$dest")
stamp="$dir/axe.version"

if [[ -s $dest && -f $stamp && $(cat "$stamp") == "$AXE_VERSION $AXE_INTEGRITY" ]]; then
  touch "$dest"  # up to date for make, which compares it with this script
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "fetch-axe: npm is needed to fetch axe-core (apt-get install npm)" >&2
  exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# --ignore-scripts: packing runs no package code; a private cache keeps ~/.npm untouched.
npm pack "axe-core@$AXE_VERSION" --pack-destination "$work" --ignore-scripts --silent \
  --cache "$work/cache" >/dev/null
tarball="$work/axe-core-$AXE_VERSION.tgz"
got=$(python3 -c 'import base64, hashlib, sys
print("sha512-" + base64.b64encode(hashlib.sha512(open(sys.argv[1], "rb").read()).digest()).decode())' "$tarball")
if [[ $got != "$AXE_INTEGRITY" ]]; then
  echo "fetch-axe: axe-core $AXE_VERSION does not match the pinned hash (got $got)" >&2
  exit 1
fi
tar -xzf "$tarball" -C "$work" package/axe.min.js package/LICENSE
mkdir -p "$dir"
install -m 0644 "$work/package/LICENSE" "$dir/LICENSE.axe-core"
install -m 0644 "$work/package/axe.min.js" "$dest.tmp"
mv "$dest.tmp" "$dest"
echo "$AXE_VERSION $AXE_INTEGRITY" >"$stamp"
echo "fetch-axe: axe-core $AXE_VERSION -> $dest"
