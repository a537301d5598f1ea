# shellcheck shell=bash
# Helpers shared by scripts/test and scripts/serve. Sourced, not run; expects $ROOT (the
# repository root) to be set and `set -euo pipefail` in force.

log() { printf '==> %s\n' "$*" >&2; }

die() {
    log "error: $*"
    exit 1
}

# as_root CMD...: run CMD as root (directly when we are root, else through sudo).
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "root is needed to run: $* (run as root, or install sudo)"
    fi
}

# is_installed PKG: true if the Debian package PKG is installed.
is_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'
}

_policy_added=0
_remove_policy() {
    if [ "$_policy_added" -eq 1 ]; then
        as_root rm -f /usr/sbin/policy-rc.d
        _policy_added=0
    fi
}

# apt_install PKG...: install those of the Debian packages that are missing (apt-get update
# first). Package scripts may not start system services meanwhile (a policy-rc.d that says
# no): the tests start their own PostgreSQL and nginx on free ports.
apt_install() {
    local missing=() pkg
    for pkg in "$@"; do
        is_installed "$pkg" || missing+=("$pkg")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    command -v apt-get >/dev/null 2>&1 || die "missing ${missing[*]} and no apt-get to install them"
    log "installing Debian packages: ${missing[*]}"
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        trap _remove_policy EXIT
        printf '#!/bin/sh\nexit 101\n' | as_root tee /usr/sbin/policy-rc.d >/dev/null
        as_root chmod 755 /usr/sbin/policy-rc.d
        _policy_added=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
    _remove_policy
}

# stop_system_service NAME: stop a system service a Debian package may have started
# (best effort: skipped without root or password-less sudo).
stop_system_service() {
    [ -x "/etc/init.d/$1" ] && command -v service >/dev/null 2>&1 || return 0
    if [ "$(id -u)" -eq 0 ]; then
        service "$1" stop >/dev/null 2>&1 || true
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo -n service "$1" stop >/dev/null 2>&1 || true
    fi
}

# venv_pip VENV: pip inside VENV (made without it), from the interpreter's own ensurepip.
venv_pip() {
    "$1/bin/python" -m pip --version >/dev/null 2>&1 ||
        "$1/bin/python" -m ensurepip >/dev/null || die "cannot install pip into $1"
}

# install_uv VENV PYTHON: uv inside VENV, by the pip of PYTHON when it has one that can
# install into another environment (--python, pip 22.3 and later), else by VENV's own pip.
install_uv() {
    local venv="$1" python="$2"
    [ -x "$venv/bin/uv" ] && return 0
    "$python" -m pip --python "$venv/bin/python" install --disable-pip-version-check -q uv \
        2>/dev/null && [ -x "$venv/bin/uv" ] && return 0
    venv_pip "$venv"
    "$venv/bin/python" -m pip install --disable-pip-version-check -q uv
}

# ensure_venv SPEC: make $ROOT/.venv and `pip install -e SPEC` in it ("." or ".[test]").
# Skipped when the same SPEC was installed from the same pyproject.toml already (the
# editable install follows source changes by itself).
ensure_venv() {
    local spec="$1" venv="$ROOT/.venv" python="${PYTHON:-python3}"
    if [ ! -x "$venv/bin/python" ]; then
        if ! command -v "$python" >/dev/null 2>&1 || ! "$python" -c 'import ensurepip, venv' 2>/dev/null; then
            apt_install python3 python3-venv
            python=python3
        fi
        "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
            die "$python is older than 3.11 (set PYTHON=/path/to/python3.11 or newer)"
        log "creating $venv"
        # Without pip: ensurepip takes 6 s of a new machine's setup, and uv does the
        # installing (pip is added below only if uv cannot be had).
        "$python" -m venv --without-pip "$venv"
    fi
    "$venv/bin/python" -c 'import sys' 2>/dev/null || die "$venv is broken: remove it and run again"
    local stamp="$venv/.apitokens-installed" hash
    hash="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)"
    if [ -x "$venv/bin/apitokens" ] && [ -f "$stamp" ] && grep -qxF "$hash $spec" "$stamp"; then
        return 0
    fi
    log "installing apitokens (uv pip install -e '$spec') into .venv"
    # uv resolves, downloads and compiles in parallel: 10 s for the test extras on a new
    # machine, where pip took 38 s. pip installs uv itself, and is the fallback if uv cannot
    # run. --compile-bytecode as pip does: where PYTHONDONTWRITEBYTECODE is set (as on this
    # project's machines) nothing else would, and every server process the tests start
    # would compile its imports again (1.0 s to import the app, against 2.2 s uncompiled).
    if install_uv "$venv" "$python" &&
        (cd "$ROOT" && "$venv/bin/uv" pip install --python "$venv/bin/python" -q \
            --compile-bytecode -e "$spec"); then
        :
    else
        log "uv failed: installing with pip instead"
        venv_pip "$venv"
        (cd "$ROOT" && "$venv/bin/python" -m pip install --disable-pip-version-check -q -e "$spec")
    fi
    # Lines of the stamp: "<pyproject hash> <spec>" for every spec now satisfied.
    grep -s "^$hash " "$stamp" >"$stamp.new" || true
    echo "$hash $spec" >>"$stamp.new"
    [ "$spec" = ".[test]" ] && echo "$hash ." >>"$stamp.new"
    mv "$stamp.new" "$stamp"
}
