#!/usr/bin/env bash
# Peluit installer for a fresh Debian 12 (bookworm) server. Run as root from a checkout or an
# unpacked release tarball:
#
#   deploy/install.sh [--db sqlite|postgresql] [--tor-from auto|torproject|backports|debian]
#                     [--tenant SLUG --tenant-name NAME --tenant-kind KIND]
#                     [--admin USERNAME [--admin-name NAME]]
#                     [--federation none|hub|member|regional] [--apparmor enforce|complain]
#
# Every step looks before it changes anything and counts what it changed; the last line is
# "changed: N". A second run with the same options prints "changed: 0". When systemd is not
# PID 1 (a chroot), units are enabled but not started. See deploy/README.md.
set -euo pipefail
umask 022
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_NO_INPUT=1

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
PREFIX=/opt/peluit
VENV=$PREFIX/.venv
HOME_DIR=/var/lib/peluit
INSTANCE=$HOME_DIR/instance
BACKUPS=/var/backups/peluit
# The Tor Project's archive signing key (https://support.torproject.org/apt/): the key fetched
# from deb.torproject.org is trusted only if it is this one and nothing else.
TOR_KEY_FPR=A3C4F0F979CAA22CDBA8F512EE8CBC9E886DDD89
TOR_KEY_URL=https://deb.torproject.org/torproject.org/$TOR_KEY_FPR.asc
TOR_KEYRING=/usr/share/keyrings/deb.torproject.org-keyring.gpg
# Proof-of-work defences for onion services arrived in tor 0.4.8.
TOR_MIN=0.4.8
UNITS_ENABLED=(peluit-source.service peluit-journalist.service peluit-onion.service
  peluit-onion.timer peluit-purge.timer peluit-doctor.timer peluit-store-publish.timer)
# By --federation: a hub serves its members, a member syncs with its hub, a regional hub both.
FEDERATION_HUB_UNITS=(peluit-federation.service)
FEDERATION_MEMBER_UNITS=(peluit-federation-sync.timer)

db=sqlite
tor_from=auto
tenant='' tenant_name='' tenant_kind=''
admin='' admin_name=''
federation=none
# Enforced: tests/deploy/test_booted.py runs the installer, the services, a report, a backup
# and the doctor under Debian's kernel with these profiles enforced and nothing refused.
apparmor_mode=enforce

usage() {
  sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
  exit "${1:-0}"
}

while [ $# -gt 0 ]; do
  case $1 in
    --db) db=${2:?--db needs a value}; shift 2 ;;
    --tor-from) tor_from=${2:?--tor-from needs a value}; shift 2 ;;
    --tenant) tenant=${2:?--tenant needs a value}; shift 2 ;;
    --tenant-name) tenant_name=${2:?--tenant-name needs a value}; shift 2 ;;
    --tenant-kind) tenant_kind=${2:?--tenant-kind needs a value}; shift 2 ;;
    --admin) admin=${2:?--admin needs a value}; shift 2 ;;
    --admin-name) admin_name=${2:?--admin-name needs a value}; shift 2 ;;
    --federation) federation=${2:?--federation needs a value}; shift 2 ;;
    --apparmor) apparmor_mode=${2:?--apparmor needs a value}; shift 2 ;;
    -h|--help) usage 0 ;;
    *) echo "install.sh: unknown option $1" >&2; usage 2 >&2 ;;
  esac
done

die() { echo "install.sh: $*" >&2; exit 1; }
case $db in sqlite|postgresql) ;; *) die "--db is sqlite or postgresql, not '$db'" ;; esac
case $tor_from in auto|torproject|backports|debian) ;;
  *) die "--tor-from is auto, torproject, backports or debian, not '$tor_from'" ;; esac
case $federation in none|hub|member|regional) ;;
  *) die "--federation is none, hub, member or regional, not '$federation'" ;; esac
case $apparmor_mode in complain|enforce) ;;
  *) die "--apparmor is complain or enforce, not '$apparmor_mode'" ;; esac
if [ -n "$admin" ] && [ -z "$tenant" ]; then
  die "the first admin is the admin instansi of a tenant: give --tenant SLUG --tenant-name NAME --tenant-kind KIND too"
fi
if [ -n "$tenant" ] && { [ -z "$tenant_name" ] || [ -z "$tenant_kind" ]; }; then
  die "--tenant needs --tenant-name and --tenant-kind"
fi
[ "$(id -u)" -eq 0 ] || die "run as root"
# shellcheck disable=SC1091
. /etc/os-release
if [ "${ID:-}" != debian ] || [ "${VERSION_CODENAME:-}" != bookworm ]; then
  die "this installer is for Debian 12 (bookworm); this is ${PRETTY_NAME:-unknown}"
fi

changed=0
changes() { changed=$((changed + 1)); echo "   + $*"; }
step() { echo "== $*"; }
say() { echo "   $*"; }
# systemd as PID 1 (sd_booted(3)): not so in a chroot or a container without it.
booted() { [ -d /run/systemd/system ]; }

# Put the content of stdin at $1 (mode $2, owner $3 or root:root) unless it is there already.
put() {
  local target=$1 mode=$2 owner=${3:-root:root} tmp
  tmp=$(mktemp)
  cat >"$tmp"
  if [ -f "$target" ] && cmp -s "$tmp" "$target" \
      && [ "$(stat -c '%a %U:%G' "$target")" = "${mode#0} $owner" ]; then
    rm -f "$tmp"
    return 1
  fi
  install -D -m "$mode" -o "${owner%:*}" -g "${owner#*:}" "$tmp" "$target"
  rm -f "$tmp"
  changes "$target"
}

# A directory with this owner and mode, made or corrected.
ensure_dir() {
  local dir=$1 owner=$2 mode=$3
  if [ -d "$dir" ] && [ "$(stat -c '%U:%G %a' "$dir")" = "$owner ${mode#0}" ]; then
    return 0
  fi
  install -d -o "${owner%:*}" -g "${owner#*:}" -m "$mode" "$dir"
  chown "$owner" "$dir"
  chmod "$mode" "$dir"
  changes "$dir ($owner, $mode)"
}

# Run at exit, whatever happens: stop what this run started for itself, close what it opened.
cleanups=()
cleanup() {
  local c
  for c in "${cleanups[@]}"; do eval "$c" || true; done
}
trap cleanup EXIT

# Once the firewall is loaded, root may not reach the network (only tor, apt and the clock
# may). pip (PyPI) and curl (the Tor Project's key) run as root: for this run only, a rule lets
# root reach DNS and HTTPS; it is removed when the run ends, even by an error.
root_net=closed
root_net_open() {
  [ $root_net = closed ] || return 0
  root_net=open
  if booted && nft list table inet peluit >/dev/null 2>&1; then
    nft insert rule inet peluit output meta skuid 0 meta l4proto '{ tcp, udp }' \
      th dport '{ 53, 443 }' accept comment '"peluit-install: pip and curl, this run only"'
    cleanups+=(root_net_close)
    say "firewall: root may reach DNS and HTTPS (PyPI, deb.torproject.org) until this run ends"
  fi
}
root_net_close() {
  local handle
  for handle in $(nft -a list chain inet peluit output | awk '/peluit-install:/{print $NF}'); do
    nft delete rule inet peluit output handle "$handle"
  done
}

installed() { [ "$(dpkg-query -W -f '${db:Status-Status}' "$1" 2>/dev/null)" = installed ]; }

apt_updated=no
apt_update() { apt-get update -q >/dev/null; apt_updated=yes; }

apt_install() {
  local missing=() p
  for p in "$@"; do installed "$p" || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ $apt_updated = yes ] || apt_update
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  changes "installed ${missing[*]}"
}

as_peluit() {
  (cd "$HOME_DIR" && runuser -u peluit -- env -i PATH=/usr/bin:/bin HOME="$HOME_DIR" \
    LANG=C.UTF-8 PELUIT_INSTANCE="$INSTANCE" "$@")
}
peluit() { as_peluit "$VENV/bin/peluit" "$@"; }

enable_unit() {
  if systemctl is-enabled -q "$1" 2>/dev/null; then return 0; fi
  systemctl enable -q "$1"
  changes "enabled $1"
}

disable_unit() {
  systemctl is-enabled -q "$1" 2>/dev/null || return 0
  systemctl disable -q "$1"
  if booted; then systemctl stop "$1" || true; fi
  changes "disabled $1"
}

start_unit() {
  booted || return 0
  if systemctl is-active -q "$1"; then return 0; fi
  # A unit that fails to start is reported, not fatal: the rest (and the admin's credentials)
  # must still come.
  if systemctl start "$1"; then
    changes "started $1"
  else
    echo "install.sh: WARNING: $1 did not start; see: journalctl -u $1" >&2
  fi
}

# --- 1. system packages ----------------------------------------------------------------------
step "system packages"
# Unattended security upgrades need Debian's security archive among apt's sources (an image
# built without it has none).
if ! grep -rqsE '^[^#]*bookworm-security|^Suites:.*bookworm-security' /etc/apt/sources.list \
    /etc/apt/sources.list.d/; then
  put /etc/apt/sources.list.d/debian-security.list 0644 <<'EOF' || true
# Debian's security archive (deploy/install.sh: unattended-upgrades installs from it daily).
deb http://deb.debian.org/debian-security bookworm-security main
EOF
  apt_update
fi
# dbus: `peluit doctor` runs as the peluit user, and a user other than root asks systemd whether
# the units run over the system bus (a minimal Debian image may lack it).
# python3-apt: --tor-from auto asks apt which tor Debian's own archives offer.
packages=(ca-certificates curl gnupg python3 python3-venv python3-apt adduser nftables apparmor
  systemd systemd-timesyncd unattended-upgrades iproute2 dbus)
[ "$db" = postgresql ] && packages+=(postgresql)
apt_install "${packages[@]}"

# --- 2. tor ----------------------------------------------------------------------------------
step "tor (from: $tor_from)"
tor_sources=/etc/apt/sources.list.d/peluit-tor.list
tor_pin=/etc/apt/preferences.d/peluit-tor
# The newest tor that Debian's own archives offer (Origin "Debian" in their signed Release
# files: the release and its security archive, not backports) and that apt may install (an
# admin's pin below 0 excludes it), whatever else is among apt's sources; empty if none.
debian_tor_version() {
  python3 - <<'PY'
import apt_pkg

apt_pkg.init()
cache = apt_pkg.Cache(None)
policy = apt_pkg.DepCache(cache).policy
try:
    versions = cache["tor"].version_list
except KeyError:
    versions = []
best = ""
for version in versions:
    debian = any(f.origin == "Debian" for f, _ in version.file_list)
    if debian and policy.get_priority(version) > 0 and (
            not best or apt_pkg.version_compare(version.ver_str, best) > 0):
        best = version.ver_str
print(best)
PY
}
if [ "$tor_from" = auto ]; then
  # The archive an earlier run chose stays (a run without the option changes nothing); else
  # Debian's own tor when it has the defences, and the Tor Project's archive when it has not:
  # one archive key fewer to trust when Debian's will do.
  if [ -f "$tor_sources" ] && grep -q '^deb .*https://deb\.torproject\.org/' "$tor_sources"; then
    tor_from=torproject
    say "auto: torproject, as an earlier run chose ($tor_sources)"
  elif [ -f "$tor_sources" ] && grep -q '^deb .* bookworm-backports ' "$tor_sources"; then
    tor_from=backports
    say "auto: backports, as an earlier run chose ($tor_sources)"
  else
    # Decided on fresh lists: lists older than Debian's newer tor would choose another archive
    # for good.
    [ $apt_updated = yes ] || apt_update
    debian_tor=$(debian_tor_version)
    if [ -n "$debian_tor" ] && dpkg --compare-versions "$debian_tor" ge "$TOR_MIN"; then
      tor_from=debian
      say "auto: debian (its tor $debian_tor has proof-of-work defences)"
    else
      tor_from=torproject
      say "auto: torproject (Debian offers tor ${debian_tor:-(none)}, older than $TOR_MIN)"
    fi
  fi
fi
case $tor_from in
  torproject)
    # The archive key: fetched and imported into a throwaway home, trusted only if that home
    # then holds one key, the pinned one, and no secret key; what is written is that key as gpg
    # exports it, not the fetched bytes: nothing else the file may carry reaches apt.
    work=$(mktemp -d)
    cleanups+=("gpgconf --homedir $work --kill all 2>/dev/null; rm -rf $work")
    # The fingerprints of the primary keys (public or secret) in a key file, or in $work.
    primary_fprs() {
      gpg --batch --homedir "$work" --with-colons "$@" 2>/dev/null \
        | awk -F: '/^(pub|sec):/{p=1;next} /^fpr:/&&p{print $10;p=0}' || true
    }
    have_fpr=''
    [ ! -f "$TOR_KEYRING" ] || have_fpr=$(primary_fprs --show-keys "$TOR_KEYRING")
    # The installed keyring (ours, or deb.torproject.org-keyring's since) must hold the key.
    if ! printf '%s\n' "$have_fpr" | grep -qx "$TOR_KEY_FPR"; then
      root_net_open
      curl -fsSL --proto '=https' --tlsv1.2 -o "$work/key.asc" "$TOR_KEY_URL" \
        || die "could not fetch $TOR_KEY_URL"
      gpg --batch --homedir "$work" --import "$work/key.asc" 2>/dev/null || true
      got=$( (primary_fprs --list-keys; primary_fprs --list-secret-keys) | sort -u)
      if [ "$got" != "$TOR_KEY_FPR" ] || [ -n "$(primary_fprs --list-secret-keys)" ]; then
        die "the key from $TOR_KEY_URL is not (only) $TOR_KEY_FPR: got '${got//$'\n'/ }'; not trusted"
      fi
      gpg --batch --homedir "$work" --export --export-options export-minimal "$TOR_KEY_FPR" \
        >"$work/key.gpg"
      [ "$(primary_fprs --show-keys "$work/key.gpg")" = "$TOR_KEY_FPR" ] \
        || die "could not export $TOR_KEY_FPR from the key fetched"
      install -D -m 0644 "$work/key.gpg" "$TOR_KEYRING"
      changes "$TOR_KEYRING (fingerprint $TOR_KEY_FPR checked)"
    fi
    if put "$tor_sources" 0644 <<EOF
# The Tor Project's packages (tor >= $TOR_MIN: proof-of-work defences for onion services).
deb [signed-by=$TOR_KEYRING] https://deb.torproject.org/torproject.org bookworm main
EOF
    then apt_update; fi
    if [ -e "$tor_pin" ]; then rm -f "$tor_pin"; changes "removed $tor_pin (backports)"; fi
    tor_packages=(tor deb.torproject.org-keyring)
    ;;
  backports)
    # Debian's own backports, signed by Debian's archive keys (already trusted).
    if put "$tor_sources" 0644 <<EOF
# Debian's backports, for tor >= $TOR_MIN (proof-of-work defences for onion services).
deb http://deb.debian.org/debian bookworm-backports main
EOF
    then apt_update; fi
    # Backports are not chosen by default (priority 100); tor is, and so are its updates.
    put "$tor_pin" 0644 <<EOF || true
Package: tor tor-geoipdb
Pin: release n=bookworm-backports
Pin-Priority: 500
EOF
    tor_packages=(tor)
    ;;
  debian)
    # Only Debian's archive: the options say where tor comes from.
    removed=no
    for f in "$tor_sources" "$tor_pin"; do
      if [ -e "$f" ]; then rm -f "$f"; changes "removed $f"; removed=yes; fi
    done
    [ $removed = no ] || apt_update
    tor_packages=(tor)
    ;;
esac
want_tor=$(apt-cache policy tor | awk '/Candidate:/{print $2}')
have_tor=$(dpkg-query -W -f '${Version}' tor 2>/dev/null || true)
# A tor older than TOR_MIN already there is upgraded from the chosen archive (from Debian's only
# if it has a newer one: otherwise there is nothing to install, and the warning below says so).
upgrade_old_tor() {
  dpkg --compare-versions "$have_tor" lt "$TOR_MIN" || return 1
  [ "$tor_from" != debian ] && return 0
  [ -n "$want_tor" ] && [ "$want_tor" != "(none)" ] && dpkg --compare-versions "$have_tor" lt "$want_tor"
}
if [ -z "$have_tor" ] || ! installed tor || upgrade_old_tor; then
  [ $apt_updated = yes ] || apt_update
  apt-get install -y -q --no-install-recommends "${tor_packages[@]}" >/dev/null
  changes "installed tor $want_tor"
else
  apt_install "${tor_packages[@]}"
fi
have_tor=$(dpkg-query -W -f '${Version}' tor)
if dpkg --compare-versions "$have_tor" lt "$TOR_MIN"; then
  if [ "$tor_from" = debian ]; then
    echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!" >&2
    echo "!! WARNING: tor $have_tor is older than $TOR_MIN: the onion services have NO proof-of-work" >&2
    echo "!! defence against denial of service. Use --tor-from torproject (or auto)." >&2
    echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!" >&2
  else
    die "tor $have_tor is installed, older than $TOR_MIN (look at: apt-cache policy tor)"
  fi
fi
say "tor $have_tor"
# Security updates of tor come from its own archive: unattended-upgrades must know it.
# ${distro_codename} is unattended-upgrades' own variable, not the shell's.
# shellcheck disable=SC2016
case $tor_from in
  torproject) tor_origin='"origin=TorProject,codename=${distro_codename}";' ;;
  backports) tor_origin='"origin=Debian Backports,codename=${distro_codename}-backports";' ;;
  debian) tor_origin='' ;;
esac
put /etc/apt/apt.conf.d/51peluit-unattended-upgrades 0644 <<EOF || true
// Peluit (deploy/install.sh): tor's own archive, besides Debian's security archive
// (50unattended-upgrades), is upgraded unattended.
Unattended-Upgrade::Origins-Pattern {
        $tor_origin
};
EOF

# --- 3. the peluit user ----------------------------------------------------------------------
step "service user"
if ! getent passwd peluit >/dev/null; then
  adduser --quiet --system --group --home "$HOME_DIR" --no-create-home peluit
  changes "system user peluit"
fi
if ! id -nG peluit | tr ' ' '\n' | grep -qx debian-tor; then
  adduser --quiet peluit debian-tor
  changes "peluit in group debian-tor (tor's control socket)"
fi
ensure_dir "$HOME_DIR" peluit:peluit 0750
ensure_dir "$INSTANCE" peluit:peluit 0700
ensure_dir "$BACKUPS" peluit:peluit 0700

# --- 4. the code and its virtualenv (runtime dependencies only) ------------------------------
step "code in $PREFIX"
# What belongs to the source: no VCS data, virtualenv, build output, caches or instance.
source_files() {
  (cd "$1" && find . \( -name .git -o -name .venv -o -name build -o -name dist \
      -o -name '*.egg-info' -o -name __pycache__ -o -name '.*_cache' -o -name .hypothesis \
      -o -name node_modules -o -path ./instance -o -path ./demo-workstation \
      -o -path ./test-artifacts \) -prune -o -type f ! -name '*.mo' ! -name '*.pyc' \
      ! -name '.peluit-source' -print0 | LC_ALL=C sort -z)
}
source_hash() { (cd "$1" && source_files . | xargs -0 -r sha256sum | sha256sum | cut -c1-64); }
want_hash=$(source_hash "$SRC")
if [ "$SRC" != "$PREFIX" ] && [ "$(cat "$PREFIX/.peluit-source" 2>/dev/null)" != "$want_hash" ]; then
  mkdir -p "$PREFIX"
  find "$PREFIX" -mindepth 1 -maxdepth 1 ! -name .venv -exec rm -rf {} +
  source_files "$SRC" | tar -C "$SRC" --null -T - --owner=0 --group=0 -cf - | tar -C "$PREFIX" -xf -
  chmod -R go-w "$PREFIX"
  echo "$want_hash" >"$PREFIX/.peluit-source"
  changes "copied $SRC to $PREFIX"
fi
extras=''
lock=$PREFIX/deploy/requirements.txt
if [ "$db" = postgresql ]; then
  extras='[postgres]'
  lock=$PREFIX/deploy/requirements-postgres.txt
fi
code_changed=no
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  changes "virtualenv $VENV"
fi
# The locks are part of the source (its hash): a new lock reinstalls, like new code.
if [ "$(cat "$VENV/.peluit-installed" 2>/dev/null)" != "$want_hash $extras" ]; then
  root_net_open
  # Nothing from the index is installed unless its hash is in a lock of the source (`make
  # lock`): a compromised index, mirror or proxy, or a hijacked release, puts no code on the
  # server. pip checks each file it fetches against the lock before it builds or installs it;
  # --no-deps: the lock is the whole list. pip itself is Debian's (python3-venv). First what
  # builds (Peluit, and stem, whose release is a source archive), as wheels; then the runtime
  # dependencies only (never the dev extras: test tools do not belong here), built without an
  # isolated environment, which pip would fill from the index with no hash checked.
  "$VENV/bin/pip" install -q --require-hashes --no-deps --only-binary :all: \
    -r "$PREFIX/deploy/requirements-build.txt"
  "$VENV/bin/pip" install -q --require-hashes --no-deps --no-build-isolation --use-pep517 \
    -r "$lock"
  # Babel (from the lock: flask-babel needs it) compiles the translations before the package is
  # built, so that the .mo files are in it.
  for po in "$PREFIX"/*/translations/*/LC_MESSAGES/*.po; do
    "$VENV/bin/pybabel" -q compile -i "$po" -o "${po%.po}.mo"
  done
  # Peluit itself, from $PREFIX and nothing else (--no-index); the same version number may
  # carry new code, hence --force-reinstall (of Peluit alone: --no-deps).
  "$VENV/bin/pip" install -q --no-index --no-deps --no-build-isolation --force-reinstall "$PREFIX"
  rm -rf "$PREFIX/build" "$PREFIX"/*.egg-info
  # A lock that no longer fits pyproject.toml stops here, before anything runs the code.
  if ! broken=$("$VENV/bin/pip" check 2>&1); then
    die "the virtualenv's dependencies do not fit Peluit's (a stale lock? make lock): $broken"
  fi
  echo "$want_hash $extras" >"$VENV/.peluit-installed"
  changes "installed Peluit into $VENV"
  code_changed=yes
fi

# --- 5. the database -------------------------------------------------------------------------
step "database: $db"
toml=$INSTANCE/peluit.toml
if [ "$db" = postgresql ]; then
  pg_version=$(find /etc/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -V | tail -n 1)
  [ -n "$pg_version" ] || die "no PostgreSQL cluster in /etc/postgresql"
  if booted; then
    enable_unit postgresql.service
    start_unit postgresql.service
  elif ! pg_ctlcluster "$pg_version" main status >/dev/null 2>&1; then
    # No systemd here: the cluster runs for this script only.
    pg_ctlcluster "$pg_version" main start
    cleanups+=("pg_ctlcluster $pg_version main stop")
  fi
  psql_q() { runuser -u postgres -- psql -XtAq -d postgres -c "$1"; }
  if [ "$(psql_q "SELECT 1 FROM pg_roles WHERE rolname = 'peluit'")" != 1 ]; then
    runuser -u postgres -- createuser --no-superuser --no-createdb --no-createrole peluit
    changes "PostgreSQL role peluit"
  fi
  if [ "$(psql_q "SELECT 1 FROM pg_database WHERE datname = 'peluit'")" != 1 ]; then
    runuser -u postgres -- createdb --owner=peluit --encoding=UTF8 --template=template0 peluit
    changes "PostgreSQL database peluit (owner peluit)"
  fi
  # Peer authentication over the unix socket (Debian's pg_hba.conf: local all all peer): the
  # peluit user is the peluit role, and there is no password anywhere.
  url='postgresql+psycopg:///peluit?host=/var/run/postgresql'
  if [ -f "$toml" ] && grep -q '^database_url' "$toml"; then
    grep -qxF "database_url = \"$url\"" "$toml" \
      || die "$toml names another database_url; leave it or remove that line"
  else
    put "$toml" 0600 peluit:peluit < <([ -f "$toml" ] && cat "$toml"; echo "database_url = \"$url\"") \
      || true
  fi
elif [ -f "$toml" ] && grep -q '^database_url' "$toml"; then
  say "keeping the database_url of $toml"
fi

# --- 6. the instance -------------------------------------------------------------------------
step "instance $INSTANCE"
fingerprint=''
if [ ! -d "$INSTANCE/secrets" ] || [ "$(peluit db current)" = "base (empty)" ]; then
  out=$(peluit init)
  fingerprint=$(printf '%s\n' "$out" | sed -n 's/^instance signing key fingerprint: //p')
  changes "peluit init"
elif [ $code_changed = yes ]; then
  # New code on an existing instance: its migrations are the upgrade's, which backs up first.
  say "NOTE: new code on an existing instance: run 'peluit upgrade --backup-to $BACKUPS' as peluit (docs/backup.md)"
fi
if [ -n "$tenant" ] && ! peluit tenant list | cut -f1 | grep -qx "$tenant"; then
  peluit tenant add "$tenant" --name "$tenant_name" --kind "$tenant_kind" >/dev/null
  changes "tenant $tenant"
fi

# --- 7. tor's configuration, the units -------------------------------------------------------
step "torrc and systemd units"
torrc_changed=no
# A federation member (and a regional hub, which is its own hub's member) reaches its hub's
# federation onion through a SOCKS port on loopback, for onion addresses only; every other
# installation has none (torrc.template).
socks_port='SocksPort 0'
case $federation in member|regional) socks_port='SocksPort 127.0.0.1:9050 OnionTrafficOnly' ;; esac
[ "$(grep -cx 'SocksPort 0' "$SRC/deploy/torrc.template")" = 1 ] \
  || die "deploy/torrc.template must hold the line 'SocksPort 0' once (--federation replaces it)"
put /etc/tor/torrc 0644 < <(sed "s/^SocksPort 0\$/$socks_port/" "$SRC/deploy/torrc.template") \
  && torrc_changed=yes
units_changed=no
for unit in "$SRC"/deploy/systemd/peluit-*; do
  put "/etc/systemd/system/${unit##*/}" 0644 <"$unit" && units_changed=yes
done
if booted && [ $units_changed = yes ]; then systemctl daemon-reload; fi

# --- 8. firewall, logs, time, upgrades, AppArmor ---------------------------------------------
step "nftables, journald, time, unattended upgrades, federation, AppArmor"
nft_changed=no
put /etc/nftables.conf 0755 <"$SRC/deploy/nftables.conf" && nft_changed=yes
journald_changed=no
# The journal in memory only, for two days at most: a seized disk holds no history of when tor
# restarted, when the services were busy or who logged in as an operator. Peluit logs no
# address, user agent or codename anyway; these are the traces that remain.
put /etc/systemd/journald.conf.d/peluit.conf 0644 <<'EOF' && journald_changed=yes
# Peluit (deploy/install.sh): logs may be seized with the server. Kept in memory (lost at
# reboot), for two days at most, 64 MB at most.
[Journal]
Storage=volatile
RuntimeMaxUse=64M
MaxRetentionSec=2day
EOF
# Debian keeps the journal on disk (/var/log/journal) until the setting above takes effect:
# what journald wrote there before it did (the boot, the install itself) goes too. Called once
# journald runs with the setting (section 9), so that it writes nothing there afterwards.
drop_disk_journal() {
  if compgen -G '/var/log/journal/*/*.journal*' >/dev/null; then
    find /var/log/journal -mindepth 2 -maxdepth 2 -name '*.journal*' -delete
    changes "removed the journal files kept on disk before (/var/log/journal)"
  fi
}
put /etc/apt/apt.conf.d/20auto-upgrades 0644 <<'EOF' || true
// Peluit (deploy/install.sh): fetch the package lists and install security upgrades daily.
APT::Periodic::Update-Package-Lists "1";
APT::Periodic::Unattended-Upgrade "1";
EOF
federation_units=()
case $federation in
  hub) federation_units=("${FEDERATION_HUB_UNITS[@]}") ;;
  member) federation_units=("${FEDERATION_MEMBER_UNITS[@]}") ;;
  regional) federation_units=("${FEDERATION_HUB_UNITS[@]}" "${FEDERATION_MEMBER_UNITS[@]}") ;;
esac
for unit in nftables.service systemd-timesyncd.service unattended-upgrades.service \
    apparmor.service tor.service "${UNITS_ENABLED[@]}" "${federation_units[@]}"; do
  enable_unit "$unit"
done
# The federation units of the roles not chosen are disabled: the options say what runs.
for unit in "${FEDERATION_HUB_UNITS[@]}" "${FEDERATION_MEMBER_UNITS[@]}"; do
  case " ${federation_units[*]} " in *" $unit "*) ;; *) disable_unit "$unit" ;; esac
done
say "federation: $federation${federation_units[*]:+ (${federation_units[*]})}"
if [ -f /etc/apparmor.d/system_tor ]; then
  say "AppArmor: Debian's profile system_tor confines tor (tor@default.service: AppArmorProfile=-system_tor)"
else
  say "AppArmor: no profile for tor shipped with this tor package"
fi
# Peluit's own profiles (deploy/apparmor/peluit says where they attach and why), enforced
# unless --apparmor complain: then "complain" is added to their flags. The parser must accept
# them before they are put in place (apparmor.service loads every file there at boot).
aa_changed=no
aa_flags='flags=(attach_disconnected)'
[ "$(grep -c "$aa_flags" "$SRC/deploy/apparmor/peluit")" = 2 ] \
  || die "deploy/apparmor/peluit must give both profiles '$aa_flags'"
put /etc/apparmor.d/abstractions/peluit 0644 <"$SRC/deploy/apparmor/abstractions/peluit" \
  && aa_changed=yes
aa_profile=$(mktemp)
cleanups+=("rm -f $aa_profile")
if [ "$apparmor_mode" = complain ]; then
  sed "s/$aa_flags/flags=(attach_disconnected, complain)/" "$SRC/deploy/apparmor/peluit"
else
  cat "$SRC/deploy/apparmor/peluit"
fi >"$aa_profile"
if ! cmp -s "$aa_profile" /etc/apparmor.d/peluit || [ $aa_changed = yes ]; then
  # -Q: parse and compile, load nothing; -K: no cache.
  apparmor_parser -Q -K -q "$aa_profile" || die "apparmor_parser refuses deploy/apparmor/peluit"
fi
put /etc/apparmor.d/peluit 0644 <"$aa_profile" && aa_changed=yes
say "AppArmor: peluit-web (gunicorn) and peluit-cli (peluit) in $apparmor_mode mode"

# --- 9. start (only where systemd runs) ------------------------------------------------------
step "services"
if booted; then
  # Loaded by nftables.service, which then shows as active, as it does after every boot. A
  # reload is one atomic `nft -f` (the file flushes and loads in one transaction); a restart
  # would flush first and leave the server without rules for a moment. Checked first: a file
  # nft refuses leaves the rules in force as they are.
  if [ $nft_changed = yes ] || ! nft list table inet peluit >/dev/null 2>&1 \
      || ! systemctl is-active -q nftables.service; then
    nft -c -f /etc/nftables.conf || die "nft refuses /etc/nftables.conf; the rules in force are unchanged"
    say "loading the firewall: NEW connections from outside are refused from now on (SSH too)"
    systemctl reload-or-restart nftables.service
    [ $nft_changed = yes ] || changes "loaded /etc/nftables.conf"
  fi
  if [ $journald_changed = yes ]; then systemctl restart systemd-journald; fi
  drop_disk_journal
  if [ -f /etc/apparmor.d/system_tor ] && [ -r /sys/kernel/security/apparmor/profiles ] \
      && ! grep -q '^system_tor ' /sys/kernel/security/apparmor/profiles; then
    apparmor_parser -r -W /etc/apparmor.d/system_tor
    changes "loaded AppArmor profile system_tor"
    torrc_changed=yes
  fi
  # Peluit's profiles, where the kernel has AppArmor (else apparmor.service has nothing to
  # load them into either). Running processes keep the confinement they started with: the
  # services are restarted below when the profiles were (re)loaded.
  aa_loaded=no
  if aa-enabled -q 2>/dev/null || [ "$(cat /sys/module/apparmor/parameters/enabled 2>/dev/null)" = Y ]; then
    # What loads every profile at boot; started now (it was only installed), so that the state
    # after this run is the state after a reboot. It loads Peluit's profiles too: the services
    # already running must then be restarted to be confined (below).
    if ! systemctl is-active -q apparmor.service; then
      start_unit apparmor.service
      aa_loaded=yes
    fi
    for profile in peluit-web peluit-cli; do
      if [ $aa_changed = yes ] \
          || ! grep -qx "$profile ($apparmor_mode)" /sys/kernel/security/apparmor/profiles; then
        # Like a unit that does not start: reported, not fatal (the systemd sandbox stands).
        if apparmor_parser -r -W /etc/apparmor.d/peluit; then
          changes "loaded AppArmor profiles peluit-web and peluit-cli ($apparmor_mode)"
          aa_loaded=yes
        else
          echo "install.sh: WARNING: the kernel refused /etc/apparmor.d/peluit; Peluit runs unconfined by AppArmor" >&2
        fi
        break
      fi
    done
  else
    say "AppArmor is not enabled in this kernel: the profiles are installed, not loaded"
  fi
  start_unit systemd-timesyncd.service
  # The system bus (`peluit doctor` asks systemd over it): sockets.target starts it at boot.
  start_unit dbus.socket
  if [ $torrc_changed = yes ] && systemctl is-active -q tor@default.service; then
    systemctl restart tor@default.service
  fi
  start_unit tor@default.service
  if [ $units_changed = yes ] || [ $aa_loaded = yes ]; then
    for unit in peluit-source.service peluit-journalist.service peluit-federation.service; do
      if systemctl is-active -q "$unit"; then systemctl restart "$unit"; fi
    done
  fi
  for unit in "${UNITS_ENABLED[@]}" "${federation_units[@]}"; do start_unit "$unit"; done
else
  drop_disk_journal
  say "systemd is not PID 1 here (a chroot?): units enabled, NOT started; they start at boot"
  say "(AppArmor profiles, if the kernel has AppArmor, are loaded at boot by apparmor.service)"
fi

# --- 10. the first admin, last: nothing may fail between making its credentials and showing them
credentials=''
if [ -n "$admin" ]; then
  step "the first admin instansi"
  if ! peluit investigator list "$tenant" | cut -f1 | grep -qx "$admin"; then
    credentials=$(peluit investigator add "$tenant" "$admin" --name "${admin_name:-$admin}" \
      --role admin_instansi)
    changes "admin instansi $admin of $tenant"
  fi
  if ! peluit onion client-key list | grep -qx "$admin"; then
    # Published at once when tor runs; otherwise kept, and published with the investigator
    # onion when tor starts (peluit-onion.service).
    credentials+=$'\n'$(peluit onion client-key add "$admin" 2>/dev/null)
    changes "client key of $admin for the investigator onion"
  fi
fi

# --- 11. what the administrator needs --------------------------------------------------------
step "onions"
keys_before=$(find "$INSTANCE/onion" -name '*.key' 2>/dev/null | wc -l)
addresses=$(peluit onion addresses)
keys_after=$(find "$INSTANCE/onion" -name '*.key' | wc -l)
[ "$keys_before" = "$keys_after" ] || changes "onion keys ($((keys_after - keys_before)) made)"
printf '%s\n' "$addresses" | sed 's/^/   /'
if booted; then
  say "published? ask: sudo -u peluit PELUIT_INSTANCE=$INSTANCE $VENV/bin/peluit onion status"
fi
if [ -z "$fingerprint" ]; then
  fingerprint=$(as_peluit gpg --batch --homedir "$INSTANCE/signing" --with-colons --list-keys \
    | awk -F: '/^pub:/{p=1;next} /^fpr:/&&p{print $10;exit}')
fi
step "instance signing key fingerprint (investigators compare it on the workstation)"
say "$fingerprint"
if [ -n "$admin" ]; then
  step "first admin: $admin (admin instansi of $tenant)"
  if [ -n "${credentials//$'\n'/}" ]; then
    say "Shown once. Hand them over in person; they are not stored anywhere in clear."
    printf '%s\n' "$credentials" | sed '/^$/d; s/^/   /'
  else
    say "exists already; its credentials were shown when it was made. New ones:"
    say "peluit investigator reset-password / reset-2fa $admin; peluit onion client-key add $admin"
  fi
fi
if ! systemctl is-enabled -q peluit-backup.timer 2>/dev/null; then
  say "backups: import the operators' public backup key, then enable peluit-backup.timer (deploy/README.md)"
fi
echo "changed: $changed"
