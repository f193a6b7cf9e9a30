#!/usr/bin/env bash
# Install the Debian packages Peluit needs, when they are missing. As root it installs them;
# otherwise it names the command to run. Idempotent and quiet when everything is there.
#
#   scripts/system-deps.sh run     what `make run` needs (gnupg, tor)
#   scripts/system-deps.sh bench   and PostgreSQL for the database benchmark
#   scripts/system-deps.sh [test]  everything the test suite needs
set -euo pipefail
profile=${1:-test}

# command that proves the package is there -> Debian package
declare -A need=(
  [gpg]=gnupg
  [gpgconf]=gnupg
  [tor]=tor
)
if [[ $profile == test ]]; then
  need+=(
  [/usr/share/hunspell/id_ID.dic]=hunspell-id
  [runuser]=util-linux
  # The end-to-end tests: a real browser, and npm to fetch axe-core.
  [chromium]=chromium
  [npm]=npm
  # The onion end-to-end test reaches the onions through tor's SOCKS port with curl.
  [curl]=curl
  [unshare]=util-linux
  # gpg-agent under a clock that runs fast, for tests of an agent that forgets a passphrase
  # (tests/crypto/conftest.py). Its library sits in the multiarch folder: probed below.
  [faketime-lib]=libfaketime
  # The test network's guard is tested against a veth pair in a namespace of its own.
  [/usr/sbin/ip]=iproute2
  # The installer's test builds a fresh Debian 12 root to run deploy/install.sh in.
  [mmdebstrap]=mmdebstrap
  # and a stand-in for the Tor Project's archive, indexed by apt-ftparchive (torproject.py).
  [apt-ftparchive]=apt-utils
  # tests/deploy/test_booted.py boots that root in a virtual machine: an ext4 image made
  # without mounting (mke2fs -d), started by qemu.
  [/usr/sbin/mke2fs]=e2fsprogs
  [qemu-system-x86_64]=qemu-system-x86
  # tests/deploy/test_apparmor.py compiles deploy/apparmor's profiles with the real parser
  # (/usr/sbin is not on every user's PATH).
  [/usr/sbin/apparmor_parser]=apparmor
  )
fi
missing=()
for probe in "${!need[@]}"; do
  if [[ $probe == faketime-lib ]]; then
    compgen -G '/usr/lib/*/faketime/libfaketimeMT.so.1' >/dev/null && continue
  elif [[ $probe == /* ]]; then [[ -e $probe ]] && continue
  else command -v "$probe" >/dev/null 2>&1 && continue
  fi
  missing+=("${need[$probe]}")
done
# PostgreSQL's server binaries live outside PATH on Debian.
if [[ $profile != run ]] && ! command -v initdb >/dev/null 2>&1 && ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
  missing+=(postgresql)
fi
[[ ${#missing[@]} -eq 0 ]] && exit 0

mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing system packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "Peluit needs these Debian packages: ${missing[*]}" >&2
  echo "Install them with: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
