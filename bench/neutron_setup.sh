#!/usr/bin/env bash
# Install what bench/compare_neutron.py needs to run the real OpenStack Neutron beside Baryon.
# Not part of the test suite; run by hand, as root, before the comparison:
#
#   bench/neutron_setup.sh [--venv DIR] [--version X.Y.Z] [--upgrade] [--force]
#
#   --venv DIR       the Neutron virtual environment (default: bench/.neutron-venv)
#   --version X.Y.Z  the neutron release to install (default: PyPI's newest, looked up once)
#   --upgrade        look PyPI's newest release up again; reinstall if it is not the one installed
#   --force          reinstall the venv even when its stamp says it is complete
#
# 1. Debian packages that are missing: rabbitmq-server (and Erlang), mariadb-server, and what
#    pip needs to build uWSGI (gcc, libc6-dev). Maintainer scripts may not start any service:
#    /usr/sbin/policy-rc.d exits 101 during the install and is put back afterwards (as
#    bin/setup's apt_install). RabbitMQ, epmd and MariaDB are only ever run privately by
#    bench/compare_neutron.py (own ports, directories and node name on 127.0.0.1).
# 2. A separate virtual environment, built from the interpreter of the project's .venv (the
#    same Python as Baryon's server), with neutron, uWSGI (its API runs as a WSGI application:
#    neutron 29 ships no neutron-server) and PyMySQL. The venv's .baryon-neutron-stamp records
#    what was installed; when it is there (and matches --version, when given), nothing is done.
# Idempotent; progress on stderr.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/bench/.neutron-venv"
VERSION=""
FORCE=0
UPGRADE=0
DEBIAN_PACKAGES="rabbitmq-server mariadb-server gcc libc6-dev"
PIP_PACKAGES="uwsgi PyMySQL"
MIN_PYTHON="3.11"  # neutron 29's Requires-Python

say() { printf 'neutron_setup: %s\n' "$*" >&2; }
die() { printf 'neutron_setup: ERROR: %s\n' "$*" >&2; exit 1; }
usage() { sed -n '2,21s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2; }

while [ $# -gt 0 ]; do
    case "$1" in
        --venv) [ $# -ge 2 ] || die "--venv needs a directory"; VENV="$(realpath -m "$2")"; shift 2 ;;
        --version) [ $# -ge 2 ] || die "--version needs a version"; VERSION="$2"; shift 2 ;;
        --force) FORCE=1; shift ;;
        --upgrade) UPGRADE=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage; die "unknown argument: $1" ;;
    esac
done
[ "$(id -u)" = 0 ] || die "run as root (apt-get install)"
STAMP="$VENV/.baryon-neutron-stamp"

# --- Debian packages, no service started -------------------------------------

deb_installed() {
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" = "install ok installed" ]
}

POLICY_RC=/usr/sbin/policy-rc.d
POLICY_BACKUP=""
POLICY_OURS=0

restore_policy_rc() {
    if [ "$POLICY_OURS" = 1 ]; then
        rm -f "$POLICY_RC"
        if [ -n "$POLICY_BACKUP" ] && [ -e "$POLICY_BACKUP" ]; then
            mv -f "$POLICY_BACKUP" "$POLICY_RC"
        fi
        POLICY_OURS=0
    fi
}

# PIDs of running epmd / beam processes (RabbitMQ's): listed before and after the install, so
# that one started by a maintainer script despite policy-rc.d would be reported (not killed:
# nothing proves it is not someone else's).
erlang_pids() {
    local d comm
    for d in /proc/[0-9]*; do
        comm="$(cat "$d/comm" 2>/dev/null || true)"
        case "$comm" in epmd|beam|beam.smp) printf '%s\n' "${d#/proc/}" ;; esac
    done | sort -n
}

# apt_install PKG...: policy-rc.d exiting 101 ("action forbidden", honoured by invoke-rc.d and
# deb-systemd-invoke, through which Debian's postinst scripts start rabbitmq-server, epmd and
# mariadb) during the install; a pre-existing policy-rc.d is put back afterwards.
apt_install() {
    local log before after rc=0
    log="$(mktemp /tmp/baryon-neutron-setup-apt.XXXXXX.log)"
    say "apt-get update"
    if ! apt-get -o DPkg::Lock::Timeout=300 update -qq >"$log" 2>&1 </dev/null; then
        tail -n 40 "$log" >&2
        die "apt-get update failed (full output: $log)"
    fi
    trap restore_policy_rc EXIT
    trap 'restore_policy_rc; exit 130' INT TERM HUP
    if [ -e "$POLICY_RC" ] || [ -L "$POLICY_RC" ]; then
        POLICY_BACKUP="$POLICY_RC.baryon-neutron-setup.$$"
        mv -f "$POLICY_RC" "$POLICY_BACKUP"
    fi
    POLICY_OURS=1
    printf '#!/bin/sh\n# written by baryon bench/neutron_setup.sh during apt-get install; removed afterwards\nexit 101\n' \
        >"$POLICY_RC"
    chmod 755 "$POLICY_RC"
    before="$(erlang_pids)"
    say "apt-get install $* (output in $log)"
    env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        install -y -qq --no-install-recommends "$@" >>"$log" 2>&1 </dev/null || rc=$?
    restore_policy_rc
    trap - EXIT INT TERM HUP
    if [ "$rc" != 0 ]; then
        tail -n 40 "$log" >&2
        die "apt-get install $* failed (exit $rc; full output: $log)"
    fi
    after="$(erlang_pids)"
    local new
    new="$(comm -13 <(printf '%s\n' "$before") <(printf '%s\n' "$after") | tr '\n' ' ')"
    if [ -n "${new// /}" ]; then
        say "WARNING: epmd/beam processes appeared during the install (PIDs $new); left alone: check them"
    fi
    say "apt-get install done (log: $log)"
}

missing=()
for pkg in $DEBIAN_PACKAGES; do
    deb_installed "$pkg" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
    apt_install "${missing[@]}"
else
    say "Debian packages present: $DEBIAN_PACKAGES"
fi
[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || die "/usr/lib/rabbitmq/bin/rabbitmq-server missing after the install"
command -v epmd >/dev/null 2>&1 || compgen -G "/usr/lib/erlang/erts-*/bin/epmd" >/dev/null \
    || die "epmd missing after the install"

# --- the Neutron virtual environment -------------------------------------------

python_ok() {  # python_ok CMD: CMD is a Python >= MIN_PYTHON with venv
    "$1" -c "import sys, venv; sys.exit(0 if sys.version_info >= tuple(map(int, '$MIN_PYTHON'.split('.'))) else 1)" \
        >/dev/null 2>&1
}

find_python() {
    # The base interpreter of the project's .venv first: Neutron then runs on the same Python as
    # Baryon's server.
    local cand base
    if [ -x "$ROOT/.venv/bin/python" ]; then
        base="$("$ROOT/.venv/bin/python" -c 'import sys; print(sys._base_executable)' 2>/dev/null || true)"
        if [ -n "$base" ] && python_ok "$base"; then
            printf '%s\n' "$base"
            return 0
        fi
    fi
    for cand in python3.13 python3.12 python3.11 python3; do
        command -v "$cand" >/dev/null 2>&1 || continue
        if python_ok "$cand"; then
            command -v "$cand"
            return 0
        fi
    done
    return 1
}

venv_complete() {
    [ -f "$STAMP" ] && [ -x "$VENV/bin/neutron-db-manage" ] && [ -x "$VENV/bin/uwsgi" ] \
        && [ -x "$VENV/bin/neutron-rpc-server" ] && [ -x "$VENV/bin/neutron-periodic-workers" ]
}

if [ "$FORCE" = 0 ] && [ "$UPGRADE" = 0 ] && [ -z "$VERSION" ] && venv_complete; then
    say "$VENV already has $(head -n 1 "$STAMP") (stamp $STAMP): nothing to do (--upgrade looks for a newer neutron)"
    exit 0
fi

PYTHON="$(find_python)" || die "no Python >= $MIN_PYTHON with the venv module (neutron 29 needs it)"
if [ -z "$VERSION" ]; then
    # PyPI's newest release, as pip sees it (pip index is the ordinary client's look-up).
    VERSION="$("$PYTHON" -m pip index versions neutron 2>/dev/null | sed -n 's/^neutron (\(.*\))$/\1/p' | head -n 1)"
    [ -n "$VERSION" ] || VERSION="$("$ROOT/.venv/bin/python" -m pip index versions neutron 2>/dev/null \
        | sed -n 's/^neutron (\(.*\))$/\1/p' | head -n 1)"
    [ -n "$VERSION" ] || die "could not find neutron's newest release on PyPI (pip index versions neutron)"
fi
WANTED="neutron==$VERSION $PIP_PACKAGES python=$("$PYTHON" -c 'import platform; print(platform.python_version())')"

if [ "$FORCE" = 0 ] && venv_complete && [ "$(head -n 1 "$STAMP")" = "$WANTED" ]; then
    say "$VENV already has $WANTED (stamp $STAMP): nothing to do"
    exit 0
fi

say "creating $VENV with $PYTHON"
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
log="$(mktemp /tmp/baryon-neutron-setup-pip.XXXXXX.log)"
say "pip install neutron==$VERSION $PIP_PACKAGES (output in $log)"
if ! "$VENV/bin/pip" install -q --upgrade pip >"$log" 2>&1 \
        || ! "$VENV/bin/pip" install "neutron==$VERSION" $PIP_PACKAGES >>"$log" 2>&1; then
    tail -n 40 "$log" >&2
    die "pip install failed (full output: $log)"
fi
for exe in neutron-db-manage neutron-rpc-server neutron-periodic-workers uwsgi; do
    [ -x "$VENV/bin/$exe" ] || die "$VENV/bin/$exe missing after the install (see $log)"
done
# The API's WSGI application (neutron/wsgi/api.py; importing it would boot the API, so only the file).
compgen -G "$VENV/lib/python3*/site-packages/neutron/wsgi/api.py" >/dev/null \
    || die "neutron's WSGI module neutron/wsgi/api.py is missing in $VENV"
{
    printf '%s\n' "$WANTED"
    "$VENV/bin/pip" freeze
} >"$STAMP"
say "done: $("$VENV/bin/pip" show neutron 2>/dev/null | sed -n 's/^Version: /neutron /p'), uWSGI $("$VENV/bin/uwsgi" --version), in $VENV"
