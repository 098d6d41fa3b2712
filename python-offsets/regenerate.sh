#!/bin/sh
# Regenerate every committed python-offsets/*.toml from the pyenv installs.
# Usage: python-offsets/regenerate.sh   (PYENV_ROOT defaults to /root/.pyenv)
# A version that is not installed is skipped with a message; its file is left as is.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
versions="${PYENV_ROOT:-/root/.pyenv}/versions"
python=${PYTHON:-/usr/bin/python3}

# gen <pyenv version> <output file> <flavour>
gen() {
    inc=$(ls -d "$versions/$1"/include/python[0-9]* 2>/dev/null | head -n 1 || true)
    if [ -z "$inc" ] || [ ! -f "$inc/Python.h" ]; then
        echo "skipping $2: no headers for $1 under $versions" >&2
        return 0
    fi
    tmp="$here/.$2.tmp"
    if "$python" "$here/generate.py" --include "$inc" --flavour "$3" > "$tmp"; then
        mv "$tmp" "$here/$2"
        echo "wrote $2 from $inc ($3)" >&2
    else
        rm -f "$tmp"
        echo "FAILED: $2 from $inc ($3)" >&2
        return 1
    fi
}

gen 2.7.18  2.7.toml   default
gen 3.6.15  3.6.toml   default
gen 3.7.16  3.7.toml   default
gen 3.8.18  3.8.toml   default
gen 3.9.18  3.9.toml   default
gen 3.10.13 3.10.toml  default
gen 3.11.7  3.11.toml  default
gen 3.12.1  3.12.toml  default
gen 3.13.0  3.13.toml  default
gen 3.13.0  3.13t.toml free-threaded
