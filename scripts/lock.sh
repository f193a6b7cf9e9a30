#!/usr/bin/env bash
# Regenerate the hashed locks that deploy/install.sh installs (`make lock` runs this):
#
#   deploy/requirements.txt           [project].dependencies (install.sh --db sqlite)
#   deploy/requirements-postgres.txt  the same and the postgres extra (--db postgresql)
#   deploy/requirements-build.txt     [build-system].requires: what builds Peluit, and stem,
#                                     whose only release file is a source archive
#
# Why: a compromised index, mirror or proxy, or a hijacked release, must not be able to put code
# on a whistleblowing server. pip installs these with --require-hashes and nothing else.
#
# uv resolves for Debian 12's Python (3.11) on Linux x86_64, then again for aarch64: both must
# pin the same, or this fails. Each pinned version carries the hashes of all of its files on the
# index (the wheels of every platform and the sdist), so one lock serves both architectures.
# The runtime lock is constrained by the postgres lock, so that the two pin the same versions.
# Pins are kept while pyproject.toml still allows them; arguments go to uv for the first pass:
#
#   scripts/lock.sh                          # after a change of pyproject.toml
#   scripts/lock.sh --upgrade-package NAME   # one dependency to its newest allowed version
#   scripts/lock.sh --upgrade                # all of them
set -euo pipefail
cd "$(dirname "$0")/.."
uv=${UV:-.venv/bin/uv}
python=${PYTHON:-.venv/bin/python}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# --no-config: no uv.toml of the developer's (an extra index, local wheels) shapes the lock.
compile() {
  local platform=$1 out=$2
  shift 2
  "$uv" pip compile --quiet --no-config --generate-hashes --python-version 3.11 \
    --python-platform "$platform" --custom-compile-command 'make lock' -o "$out" "$@" \
    <"${stdin:-/dev/null}"
}

# lock OUT UV-ARGS...: the x86_64 resolution into OUT, checked against aarch64's.
lock() {
  local out=$1 other
  shift
  compile x86_64-manylinux_2_36 "$out" "${upgrade[@]}" "$@"
  # The aarch64 pass starts from the x86_64 pins, so that only a real difference shows.
  other=$work/$(basename "$out")
  cp "$out" "$other"
  compile aarch64-manylinux_2_36 "$other" "$@"
  if ! diff -u "$out" "$other"; then
    echo "lock.sh: $out: aarch64 resolves differently from x86_64 (above)" >&2
    exit 1
  fi
  echo "$out: $(grep -c '^[a-z0-9]' "$out") pinned"
}

upgrade=("$@")
lock deploy/requirements-postgres.txt --extra postgres pyproject.toml
lock deploy/requirements.txt -c deploy/requirements-postgres.txt pyproject.toml
# The build requirements from stdin: a file's path would be written into the lock.
"$python" -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"], sep="\n")' \
  >"$work/build.in"
stdin=$work/build.in lock deploy/requirements-build.txt -
