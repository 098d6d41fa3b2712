#!/bin/sh
# Regenerate every committed python-offsets/*.toml from the headers it was made from.
# Usage: python-offsets/regenerate.sh
#
# Header sets (all x86_64 Linux):
#   PYENV_ROOT (default /root/.pyenv): pyenv installs, 2.7 and 3.6-3.13.0.
#   PYSCRY_PYTHONS (default /root/.cache/pyscry/pythons), as tests/pythons/provision.sh
#   leaves it:
#     headers/root/usr/include/python3.X   Debian sid libpython3.X-dev (release headers,
#                                          public and internal; multiarch pyconfig.h
#                                          under x86_64-linux-gnu/python3.X/)
#     sid/root/usr/include/python3.Xd      Debian sid libpython3.X-dbg: only a pyconfig.h
#                                          (x86_64-linux-gnu/python3.Xd/); every other
#                                          header is a symlink to the release ones. That
#                                          pyconfig.h differs from the release one only by
#                                          Py_DEBUG, WITH_VALGRIND and ALT_SOABI (no header
#                                          uses the last two), so a debug table is the
#                                          release headers read with the debug pyconfig.h.
#     ft/3.X/include/python3.Xt            free-threaded CPython built from Debian's sources
#                                          (its pyconfig.h defines Py_GIL_DISABLED).
# A header set that is missing is skipped with a message; its file is left as it is.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
versions="${PYENV_ROOT:-/root/.pyenv}/versions"
pythons="${PYSCRY_PYTHONS:-/root/.cache/pyscry/pythons}"
debian="$pythons/headers/root/usr/include"
debian_dbg="$pythons/sid/root/usr/include"
python=${PYTHON:-/usr/bin/python3}
failed=0

# run <output file> <flavour> <source label> <include dir> [more generate.py arguments]
run() {
    out=$1 flavour=$2 source=$3 inc=$4
    shift 4
    if [ ! -f "$inc/Python.h" ] || [ ! -f "$inc/patchlevel.h" ]; then
        echo "skipping $out: no headers in $inc" >&2
        return 0
    fi
    tmp="$here/.$out.tmp"
    if "$python" "$here/generate.py" --include "$inc" --flavour "$flavour" \
            --source "$source" "$@" > "$tmp"; then
        mv "$tmp" "$here/$out"
        echo "wrote $out from $inc ($flavour)" >&2
    else
        rm -f "$tmp"
        echo "FAILED: $out from $inc ($flavour)" >&2
        failed=1
    fi
}

# pyenv <version> <output file> <flavour>
pyenv() {
    inc=$(ls -d "$versions/$1"/include/python[0-9]* 2>/dev/null | head -n 1 || true)
    if [ -z "$inc" ]; then
        echo "skipping $2: pyenv $1 is not installed under $versions" >&2
        return 0
    fi
    run "$2" "$3" "pyenv $1" "$inc"
}

# sid_release <3.X> : Debian sid release headers
sid_release() {
    run "$1.toml" default "Debian sid libpython$1-dev" "$debian/python$1" \
        --extra-include "$debian"
}

# sid_debug <3.X> : the same headers with the debug build's pyconfig.h
sid_debug() {
    cfg="$debian_dbg/x86_64-linux-gnu/python$1d/pyconfig.h"
    if [ ! -f "$cfg" ]; then
        echo "skipping $1d.toml: no $cfg" >&2
        return 0
    fi
    run "$1d.toml" debug "Debian sid libpython$1-dev + libpython$1-dbg pyconfig.h" \
        "$debian/python$1" --extra-include "$debian" --pyconfig "$cfg"
}

# free_threaded <3.X> : a real free-threaded build's own headers
free_threaded() {
    run "$1t.toml" free-threaded "free-threaded build of Debian's $1 sources" \
        "$pythons/ft/$1/include/python$1t"
}

pyenv 2.7.18  2.7.toml   default
pyenv 3.6.15  3.6.toml   default
pyenv 3.7.16  3.7.toml   default
pyenv 3.8.18  3.8.toml   default
pyenv 3.9.18  3.9.toml   default
pyenv 3.10.13 3.10.toml  default
pyenv 3.11.7  3.11.toml  default
pyenv 3.12.1  3.12.toml  default
pyenv 3.13.0  3.13.toml  default
free_threaded 3.13
sid_debug 3.13
sid_release 3.14
free_threaded 3.14
sid_debug 3.14
sid_release 3.15
sid_debug 3.15

exit $failed
