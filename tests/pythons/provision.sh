#!/usr/bin/env bash
# Provision the CPython interpreters pyscry's tests run against.
#
# Usage: tests/pythons/provision.sh
#
# Prints one line per working interpreter on stdout, `<name> <absolute path>`, and writes
# the same list to $PYSCRY_PYTHONS/list.txt. Progress and diagnostics go to stderr only.
#
#   2.7 3.6 ... 3.13     pyenv builds already on the machine ($PYENV_ROOT/versions/X.Y.*)
#   3.11-debian-static   the machine's /usr/bin/python3.11 (libpython linked in)
#   3.9-debian-static    Debian 11 (bullseye)'s python3.9: libpython linked in, not
#                        position-independent, stripped; run from the same private root
#   3.13-sid 3.14 3.15   Debian sid's interpreters, run from a private root in the cache
#   3.14d 3.15d          Debian sid's debug builds (python3.Xd, Py_DEBUG)
#   3.13t 3.14t          free-threaded builds of the upstream source of Debian's packages
#
# Everything obtained is cached under ${PYSCRY_PYTHONS:-$HOME/.cache/pyscry/pythons}; a
# finished interpreter leaves a marker in markers/ and is only re-verified on later runs.
# A failure to obtain one interpreter is reported as `provision: <name> unavailable: <why>`
# and does not stop the others. Exit status is 0 unless no interpreter works at all.
#
# Environment:
#   PYSCRY_PYTHONS        cache directory (default $HOME/.cache/pyscry/pythons)
#   PYENV_ROOT            pyenv root to look for builds in (default /root/.pyenv)
#   PYSCRY_DEBIAN_MIRROR  Debian mirror URI (default: the machine's own, from /etc/apt)
#   PYSCRY_JOBS           parallel make jobs for the free-threaded builds (default nproc)
#   PYSCRY_KEEP_BUILD=1   keep the free-threaded build trees after installing
#
# The machine's own apt configuration is never modified: Debian sid is reached through a
# private APT_CONFIG in the cache. The only system changes are `apt-get install` of missing
# tools (patchelf) and build dependencies (-dev packages) from the machine's own sources.

set -euo pipefail

# ---------------------------------------------------------------------------------------
# Settings and paths
# ---------------------------------------------------------------------------------------

CACHE=${PYSCRY_PYTHONS:-$HOME/.cache/pyscry/pythons}
mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd -P)

PYENV_ROOT=${PYENV_ROOT:-/root/.pyenv}
JOBS=${PYSCRY_JOBS:-$(nproc)}

TRIPLET=x86_64-linux-gnu # Debian multiarch directory of amd64
APTDIR=$CACHE/apt        # private apt configuration, lists and cache
SID=$CACHE/sid
SID_ROOT=$SID/root       # all sid packages are unpacked into this one root
SID_DEBS=$SID/debs       # downloaded .deb files
SID_DONE=$SID/extracted  # one marker per .deb unpacked into SID_ROOT
SID_LIBDIR=$SID_ROOT/usr/lib/$TRIPLET
SID_LOADER=$SID_LIBDIR/ld-linux-x86-64.so.2
FT=$CACHE/ft             # free-threaded builds: ft/3.X is the install prefix
KEYRING=$CACHE/keyring   # sid's debian-keyring package, unpacked
MARKERS=$CACHE/markers   # markers/<name> holds the path of a finished, verified python

# Libraries sid's interpreters and their lib-dynload modules need, besides the python
# packages themselves. `a|b` lists alternative names (the first one sid has is used).
SID_LIBS=(
    libc6 libgcc-s1 zlib1g libexpat1 libzstd1 libffi8 "libssl3t64|libssl3"
    libbz2-1.0 liblzma5 "libmpdec4|libmpdec3" libsqlite3-0 libuuid1
    libncursesw6 libtinfo6 "libreadline8t64|libreadline8"
)

# -dev packages CPython's configure looks for (missing ones only disable some modules).
BUILD_DEPS=(
    libffi-dev zlib1g-dev libssl-dev libbz2-dev liblzma-dev libsqlite3-dev
    libreadline-dev libncurses-dev uuid-dev libzstd-dev pkg-config
)

# ---------------------------------------------------------------------------------------
# Output and error helpers
# ---------------------------------------------------------------------------------------

log() { printf 'provision: %s\n' "$*" >&2; }

unavailable() { printf 'provision: %s unavailable: %s\n' "$1" "$2" >&2; }

# Inside an attempt: stop it, with the arguments as the reported reason.
fail() {
    printf '%s\n' "$*" >"$FAIL_FILE"
    exit 1
}

# attempt FUNC ARGS...: run FUNC in a subshell with errexit enabled. Sets ATTEMPT_RC and,
# on failure, ATTEMPT_REASON (the message given to `fail`, or else the failing command).
# Call it as a plain command (not under `if`/`||`/`&&`), or errexit would be ignored.
attempt() {
    local tmp
    tmp=$(mktemp -d)
    set +e
    (
        set -eE
        FAIL_FILE=$tmp/fail
        trap 'printf "command failed (exit %s): %s\n" "$?" "$BASH_COMMAND" >"'"$tmp"'/err"' ERR
        "$@"
    )
    ATTEMPT_RC=$?
    set -e
    ATTEMPT_REASON=
    if ((ATTEMPT_RC != 0)); then
        if [[ -s $tmp/fail ]]; then
            ATTEMPT_REASON=$(<"$tmp/fail")
        elif [[ -s $tmp/err ]]; then
            ATTEMPT_REASON=$(<"$tmp/err")
        else
            ATTEMPT_REASON="failed (exit $ATTEMPT_RC)"
        fi
    fi
    rm -rf "$tmp"
}

# ---------------------------------------------------------------------------------------
# Verification and the resulting list
# ---------------------------------------------------------------------------------------

# All names, in the order they are listed.
ALL_NAMES=(2.7 3.6 3.7 3.8 3.9 3.10 3.11 3.12 3.13 3.11-debian-static 3.9-debian-static
    3.13-sid 3.14 3.15 3.14d 3.15d 3.13t 3.14t)
declare -A LISTED=() # name -> path of each verified interpreter

# The Python code that verifies interpreter NAME: the version matches the name, the
# basic modules import, plus checks specific to the kind of build.
check_code() {
    local name=$1
    [[ $name =~ ^([0-9]+)\.([0-9]+) ]]
    printf 'import sys, threading, json\n'
    printf 'assert sys.version_info[:2] == (%s, %s), sys.version\n' \
        "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}"
    case $name in
    3.9-debian-static | 3.13-sid | 3.14 | 3.15 | 3.14d | 3.15d | 3.13t | 3.14t)
        # Provisioned ones: the stdlib is the one installed with the binary (prefix =
        # the binary's ../), not the machine's.
        printf 'import sysconfig, os\n'
        printf 'top = os.path.dirname(os.path.dirname(os.path.realpath(sys.executable)))\n'
        printf 'assert os.path.realpath(json.__file__).startswith(top + os.sep), json.__file__\n'
        # ctypes needs the libffi its _ctypes was built for: sid has bullseye's no more.
        [[ $name == 3.9-debian-static ]] || printf 'import ctypes\n'
        ;;
    esac
    case $name in
    *[0-9]d) printf 'assert hasattr(sys, "gettotalrefcount"), "not a Py_DEBUG build"\n' ;;
    *[0-9]t)
        printf 'assert not sys._is_gil_enabled(), "the GIL is enabled"\n'
        printf 'assert sysconfig.get_config_var("Py_GIL_DISABLED") == 1\n'
        ;;
    esac
    printf 'print(sys.version.replace("\\n", " "))\n'
}

# verify NAME EXE: run the checks (in a clean Python environment); prints the version.
verify() {
    local name=$1 exe=$2
    [[ -x $exe ]] || return 1
    env -u PYTHONHOME -u PYTHONPATH -u PYTHONSTARTUP -u PYTHON_GIL \
        timeout 120 "$exe" -c "$(check_code "$name")" </dev/null
}

# register NAME EXE: verify, then add to the list.
register() {
    local name=$1 exe=$2 version err
    err=$(mktemp)
    if version=$(verify "$name" "$exe" 2>"$err"); then
        log "$name ok: $exe ($version)"
        LISTED[$name]=$exe
        rm -f "$err"
        return 0
    fi
    unavailable "$name" "verification of $exe failed: $(tail -n 1 "$err")"
    rm -f "$err"
    return 1
}

# cached NAME: a previous run finished NAME and it still verifies (then it is listed).
cached() {
    local name=$1 exe version
    [[ -s $MARKERS/$name ]] || return 1
    exe=$(<"$MARKERS/$name")
    if version=$(verify "$name" "$exe" 2>/dev/null); then
        log "$name cached: $exe ($version)"
        LISTED[$name]=$exe
        return 0
    fi
    log "$name: cached $exe no longer verifies, provisioning it again"
    rm -f "$MARKERS/$name"
    return 1
}

# finish NAME EXE: after a successful attempt, verify, list and write the marker.
finish() {
    local name=$1 exe=$2
    if register "$name" "$exe"; then
        mkdir -p "$MARKERS"
        printf '%s\n' "$exe" >"$MARKERS/$name"
    fi
}

# ---------------------------------------------------------------------------------------
# Machine packages (only installed when missing)
# ---------------------------------------------------------------------------------------

have_pkg() {
    dpkg-query -W -f='${Status}\n' "$1" 2>/dev/null | grep 'ok installed' >/dev/null
}

# system_install PKG...: apt-get install from the machine's own sources.
system_install() {
    local apt=(env -u APT_CONFIG DEBIAN_FRONTEND=noninteractive apt-get -q -y
        -o DPkg::Lock::Timeout=600 -o Acquire::Retries=3)
    log "installing on the machine: $*"
    "${apt[@]}" install --no-install-recommends "$@" >&2 && return 0
    log "install failed; refreshing the machine's package lists and retrying"
    "${apt[@]}" update >&2 && "${apt[@]}" install --no-install-recommends "$@" >&2
}

ensure_patchelf() {
    command -v patchelf >/dev/null || system_install patchelf ||
        fail "patchelf is missing and could not be installed"
}

# ---------------------------------------------------------------------------------------
# Private apt configuration for Debian sid
# ---------------------------------------------------------------------------------------

# The machine's Debian mirror: the first non-security URI in its apt sources.
debian_mirror() {
    local uri=
    if [[ -n ${PYSCRY_DEBIAN_MIRROR:-} ]]; then
        uri=$PYSCRY_DEBIAN_MIRROR
    elif [[ -r /etc/apt/sources.list.d/debian.sources ]]; then
        uri=$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }' \
            /etc/apt/sources.list.d/debian.sources)
    fi
    if [[ -z $uri && -r /etc/apt/sources.list ]]; then
        # deb [options] URI suite components...
        uri=$(awk '$1 == "deb" { sub(/\[[^]]*\] */, ""); if ($2 !~ /security/) { print $2; exit } }' \
            /etc/apt/sources.list)
    fi
    printf '%s\n' "${uri:-http://deb.debian.org/debian}"
}

# Write the private configuration (cheap; done by every step that needs apt).
apt_setup() {
    local mirror keyring=/usr/share/keyrings/debian-archive-keyring.gpg
    mirror=$(debian_mirror)
    mkdir -p "$APTDIR"/{apt.conf.d,preferences.d,sources.list.d,state/lists/partial,cache/archives/partial}
    : >"$APTDIR/empty.conf"
    # bullseye only for python3.9, which sid no longer has; everything else is newer
    # in sid, so apt takes it from there. Rewritten only when it changes: a newer list
    # makes apt_update refresh the indexes.
    local sources="deb [signed-by=$keyring] $mirror sid main
deb-src [signed-by=$keyring] $mirror sid main
deb [signed-by=$keyring] $mirror bullseye main"
    if [[ ! -e $APTDIR/sources.list || $(<"$APTDIR/sources.list") != "$sources" ]]; then
        printf '%s\n' "$sources" >"$APTDIR/sources.list"
    fi
    # Everything apt reads or writes lives under APTDIR, except the dpkg status, which is
    # only read. The machine's apt.conf.d is not read (its hooks act on the machine's
    # caches). Check-Valid-Until: the mirror may serve an index past its Valid-Until date
    # (the machine's own configuration disables the check for the same reason).
    cat >"$APTDIR/apt.conf" <<EOF
Dir::Etc::main "$APTDIR/empty.conf";
Dir::Etc::parts "$APTDIR/apt.conf.d";
Dir::Etc::sourcelist "$APTDIR/sources.list";
Dir::Etc::sourceparts "$APTDIR/sources.list.d";
Dir::Etc::preferences "$APTDIR/preferences";
Dir::Etc::preferencesparts "$APTDIR/preferences.d";
Dir::State "$APTDIR/state";
Dir::State::lists "lists";
Dir::State::status "/var/lib/dpkg/status";
Dir::Cache "$APTDIR/cache";
Acquire::Check-Valid-Until "false";
Acquire::Languages "none";
Acquire::Retries "3";
APT::Sandbox::User "root";
EOF
}

sid_apt() { APT_CONFIG=$APTDIR/apt.conf "$@"; }

# apt_update [force]: refresh the indexes if missing, older than a day or than the sources
# list (or if forced). Returns 1 on failure.
apt_update() {
    local stamp=$APTDIR/updated.stamp
    if [[ ${1:-} != force && -e $stamp && ! $APTDIR/sources.list -nt $stamp ]] &&
        [[ -z $(find "$stamp" -mmin +1440) ]]; then
        return 0
    fi
    log "updating Debian sid package indexes ($(debian_mirror))"
    sid_apt apt-get -q update >&2 || return 1
    touch "$stamp"
}

# pick_pkg 'a|b|c': the first of the alternatives that sid has a real package for.
pick_pkg() {
    local alt alts
    IFS='|' read -ra alts <<<"$1"
    for alt in "${alts[@]}"; do
        if sid_apt apt-cache show --no-all-versions "$alt" 2>/dev/null | grep '^Package:' >/dev/null; then
            printf '%s\n' "$alt"
            return 0
        fi
    done
    return 1
}

# sid_download PKG...: download the .debs not in SID_DEBS yet (a version already there is
# kept, so the root does not change under finished interpreters). Returns 1 on failure
# (written without relying on errexit, since it is called under `||`).
sid_download() {
    local pkg missing=()
    mkdir -p "$SID_DEBS/partial" || return 1
    for pkg in "$@"; do
        compgen -G "$SID_DEBS/${pkg}_*.deb" >/dev/null || missing+=("$pkg")
    done
    ((${#missing[@]})) || return 0
    log "downloading from sid: ${missing[*]}"
    rm -f "$SID_DEBS"/partial/*.deb
    if ! (cd "$SID_DEBS/partial" && sid_apt apt-get -q download "${missing[@]}" >&2); then
        # The indexes may be out of date with what the mirror has: refresh once, retry.
        apt_update force || return 1
        (cd "$SID_DEBS/partial" && sid_apt apt-get -q download "${missing[@]}" >&2) || return 1
    fi
    mv "$SID_DEBS"/partial/*.deb "$SID_DEBS"/
}

# sid_extract PKG...: unpack the packages' .debs into SID_ROOT (once per .deb).
sid_extract() {
    local pkg deb
    mkdir -p "$SID_ROOT" "$SID_DONE"
    for pkg in "$@"; do
        for deb in "$SID_DEBS/${pkg}"_*.deb; do
            [[ -e $SID_DONE/${deb##*/} ]] && continue
            log "unpacking ${deb##*/}"
            dpkg-deb -x "$deb" "$SID_ROOT"
            touch "$SID_DONE/${deb##*/}"
        done
    done
}

# ---------------------------------------------------------------------------------------
# Debian sid interpreters: 3.13-sid 3.14 3.15 3.14d 3.15d, and bullseye's 3.9-debian-static
# ---------------------------------------------------------------------------------------

# Shared part: apt setup, sid's C library and the libraries the interpreters load.
sid_prepare() {
    [[ $(dpkg --print-architecture) == amd64 ]] || fail "only amd64 is supported"
    ensure_patchelf
    apt_setup
    apt_update || fail "apt-get update for sid failed"
    local spec pkg libs=()
    for spec in "${SID_LIBS[@]}"; do
        pkg=$(pick_pkg "$spec") || fail "sid has none of: ${spec//|/, }"
        libs+=("$pkg")
    done
    sid_download "${libs[@]}" || fail "could not download ${libs[*]} from sid"
    sid_extract "${libs[@]}"
    [[ -e $SID_LOADER ]] || fail "sid's libc6 has no $SID_LOADER"
}

# The executable of a sid interpreter name (binary names as Debian ships them).
sid_exe() {
    case $1 in
    3.13-sid) echo "$SID_ROOT/usr/bin/python3.13" ;;
    3.9-debian-static) echo "$SID_ROOT/usr/bin/python3.9" ;;
    *[0-9]d) echo "$SID_ROOT/usr/bin/python${1%d}d" ;;
    *) echo "$SID_ROOT/usr/bin/python$1" ;;
    esac
}

# sid_install NAME: download, unpack and patch one sid interpreter.
sid_install() {
    local name=$1 ver=${1%%-*} pkg
    ver=${ver%d}
    local pkgs=("python$ver-minimal" "libpython$ver-minimal" "libpython$ver-stdlib" "python$ver")
    [[ $name == *[0-9]d ]] && pkgs+=("python$ver-dbg" "libpython$ver-dbg")
    for pkg in "${pkgs[@]}"; do
        pick_pkg "$pkg" >/dev/null || fail "sid has no package $pkg"
    done
    sid_download "${pkgs[@]}" || fail "could not download ${pkgs[*]} from sid"
    sid_extract "${pkgs[@]}"

    local exe
    exe=$(sid_exe "$name")
    [[ -f $exe ]] || fail "$exe missing after unpacking ${pkgs[*]}"
    # The binary sits at <root>/usr/bin, so its prefix resolves to <root>/usr and it finds
    # its stdlib by itself. Make it use sid's loader and libraries; DT_RPATH (not RUNPATH)
    # so that the libraries of dlopen()ed extension modules (libffi for _ctypes) are found.
    local rpath=$SID_LIBDIR
    [[ -d $SID_ROOT/lib/$TRIPLET ]] && rpath+=:$SID_ROOT/lib/$TRIPLET
    if [[ $(patchelf --print-interpreter "$exe") != "$SID_LOADER" ||
        $(patchelf --print-rpath "$exe") != "$rpath" ]]; then
        log "patching $exe"
        patchelf --set-interpreter "$SID_LOADER" --force-rpath --set-rpath "$rpath" "$exe"
    fi
    check_dynload "$name" "$exe"
}

# Diagnostic only: report lib-dynload modules that fail to import (usually a library
# missing from SID_LIBS, or a -dev package missing for a free-threaded build).
check_dynload() {
    local name=$1 exe=$2 bad
    bad=$(env -u PYTHONHOME -u PYTHONPATH "$exe" - 2>&1 <<'EOF' || true
import importlib, os, sys, sysconfig
d = sysconfig.get_path("platstdlib") + "/lib-dynload"
suffix = sysconfig.get_config_var("EXT_SUFFIX")
for f in sorted(os.listdir(d)):
    if f.endswith(suffix):
        mod = f[: -len(suffix)]
        try:
            importlib.import_module(mod)
        except Exception as e:
            print("%s (%s)" % (mod, e))
EOF
    )
    [[ -z $bad ]] || log "$name: warning: some lib-dynload modules do not import: ${bad//$'\n'/; }"
}

provision_sid() {
    local names=(3.9-debian-static 3.13-sid 3.14 3.15 3.14d 3.15d) need=() name
    for name in "${names[@]}"; do
        cached "$name" || need+=("$name")
    done
    ((${#need[@]})) || return 0

    attempt sid_prepare
    if ((ATTEMPT_RC != 0)); then
        for name in "${need[@]}"; do unavailable "$name" "$ATTEMPT_REASON"; done
        return 0
    fi
    for name in "${need[@]}"; do
        attempt sid_install "$name"
        if ((ATTEMPT_RC == 0)); then
            finish "$name" "$(sid_exe "$name")"
        else
            unavailable "$name" "$ATTEMPT_REASON"
        fi
    done
}

# ---------------------------------------------------------------------------------------
# Free-threaded builds: 3.13t 3.14t, from the upstream tarball in Debian's source package
# ---------------------------------------------------------------------------------------

# sid's debian-keyring (Debian developers' keys), to check .dsc signatures with gpgv.
# Returns 1 on failure (called under `if`, so written without relying on errexit).
ensure_keyring() {
    compgen -G "$KEYRING/usr/share/keyrings/*" >/dev/null && return 0
    local deb
    sid_download debian-keyring || return 1
    deb=$(compgen -G "$SID_DEBS/debian-keyring_*.deb" | head -n 1) || return 1
    rm -rf "$KEYRING.tmp"
    dpkg-deb -x "$deb" "$KEYRING.tmp" || return 1
    rm -rf "$KEYRING" && mv "$KEYRING.tmp" "$KEYRING"
}

# dsc_signature DSC: check DSC's signature with gpgv against debian-keyring. Prints
# `good <signer>`, `bad`, `unknown` (signer not in the keyring) or `nokeyring`.
dsc_signature() {
    local dsc=$1 args=() k status
    if ! ensure_keyring; then
        echo nokeyring
        return 0
    fi
    for k in "$KEYRING"/usr/share/keyrings/*.{gpg,pgp}; do
        [[ -f $k ]] && args+=(--keyring "$k")
    done
    status=$(gpgv --status-fd 1 "${args[@]}" "$dsc" 2>/dev/null || true)
    if grep '^\[GNUPG:\] VALIDSIG' <<<"$status" >/dev/null; then
        echo "good $(awk '$2 == "GOODSIG" { $1 = $2 = $3 = ""; sub(/^ */, ""); print; exit }' <<<"$status")"
    elif grep -E '^\[GNUPG:\] (BADSIG|EXPKEYSIG|REVKEYSIG)' <<<"$status" >/dev/null; then
        echo bad
    else
        echo unknown
    fi
}

# orig_file DIR: the upstream tarball the .dsc in DIR lists, if it is there with the
# SHA-256 the .dsc gives (fails otherwise).
orig_file() {
    local dir=$1 dsc orig sum
    dsc=$(compgen -G "$dir/*.dsc" | head -n 1) || return 1
    read -r sum orig < <(awk '/^Checksums-Sha256:/ { s = 1; next } /^[^ ]/ { s = 0 }
        s && $3 ~ /\.orig\.tar\.(xz|gz|bz2)$/ { print $1, $3; exit }' "$dsc") || return 1
    [[ -f $dir/$orig ]] && sha256sum -c --status <<<"$sum  $dir/$orig" || return 1
    printf '%s\n' "$dir/$orig"
}

# Known-good source versions to fetch straight from the mirror's pool when no version in
# the Sources index has its files on the mirror (seen on this kind of machine: the newest
# 3.13 and 3.14 ones 404). Fetched outside the index, so the .dsc must have a good
# signature from debian-keyring, and the tarball the SHA-256 listed in it.
declare -A POOL_FALLBACK=([3.13]="3.13.15-1" [3.14]="3.14.7-1")

# from_pool X.Y VERSION DIR: fetch python3.X_VERSION.dsc and its .orig tarball into DIR.
# Returns 1 on failure (called under `if`).
from_pool() {
    local ver=$1 v=$2 dir=$3 base sig orig
    base=$(debian_mirror)/pool/main/p/python$ver
    log "fetching python${ver}_$v.dsc from $base (not in the index)"
    curl -fsSL --retry 3 -o "$dir/python${ver}_$v.dsc" "$base/python${ver}_$v.dsc" || return 1
    sig=$(dsc_signature "$dir/python${ver}_$v.dsc")
    if [[ $sig != good* ]]; then
        log "python${ver}_$v.dsc: signature not good ($sig); not using it"
        return 1
    fi
    orig=$(awk '/^Checksums-Sha256:/ { s = 1; next } /^[^ ]/ { s = 0 }
        s && $3 ~ /\.orig\.tar\.(xz|gz|bz2)$/ { print $3; exit }' "$dir/python${ver}_$v.dsc")
    [[ -n $orig ]] || return 1
    curl -fsSL --retry 3 -o "$dir/$orig" "$base/$orig" || return 1
}

# fetch_source X.Y: Debian's python3.X source package into ft/src/X.Y: the newest version
# in sid's Sources index whose files the mirror actually has (the newest ones may 404),
# else a known-good version from the pool.
fetch_source() {
    local ver=$1 dir=$FT/src/$1 v index=() tried=()
    orig_file "$dir" >/dev/null && return 0
    apt_update || fail "apt-get update for sid failed"
    mapfile -t index < <(sid_apt apt-cache showsrc "python$ver" 2>/dev/null |
        awk '/^Version:/ { print $2 }' | sort -u -V -r)
    for v in "${index[@]}" ${POOL_FALLBACK[$ver]:-}; do
        [[ " ${tried[*]} " == *" $v "* ]] && continue
        tried+=("$v")
        rm -rf "$dir.tmp"
        mkdir -p "$dir.tmp"
        if [[ " ${index[*]} " == *" $v "* ]]; then
            log "fetching source package python$ver=$v"
            (cd "$dir.tmp" && sid_apt apt-get -q source --download-only "python$ver=$v" >&2) || true
        else
            from_pool "$ver" "$v" "$dir.tmp" || true
        fi
        if orig_file "$dir.tmp" >/dev/null; then
            rm -rf "$dir"
            mv "$dir.tmp" "$dir"
            return 0
        fi
        log "python$ver=$v could not be fetched"
    done
    rm -rf "$dir.tmp"
    fail "no version of source package python$ver could be downloaded (tried: ${tried[*]:-none})"
}

ensure_build_deps() {
    local missing=() p
    command -v make >/dev/null && command -v gcc >/dev/null || missing+=(build-essential)
    for p in "${BUILD_DEPS[@]}"; do
        have_pkg "$p" || missing+=("$p")
    done
    if ((${#missing[@]})); then
        system_install "${missing[@]}" ||
            log "warning: could not install ${missing[*]}; some extension modules may be missing"
    fi
}

ft_exe() { echo "$FT/${1%t}/bin/python${1%t}t"; }

# ft_build NAME: fetch, check, configure, build and install one free-threaded CPython.
# Each stage leaves a marker in the build tree, so an interrupted build resumes.
ft_build() {
    local name=$1 ver=${1%t}
    local prefix=$FT/$ver build=$FT/build/$ver log=$FT/build-$ver.log
    apt_setup
    fetch_source "$ver"
    local dsc orig
    dsc=$(compgen -G "$FT/src/$ver/*.dsc" | head -n 1)
    orig=$(orig_file "$FT/src/$ver")
    # Fetched from the index, apt checked the files' hashes; gpgv is a second check.
    local sig
    sig=$(dsc_signature "$dsc")
    case $sig in
    good*) log "${dsc##*/}: good signature (${sig#good })" ;;
    bad) fail "bad signature on ${dsc##*/}" ;;
    *) log "warning: ${dsc##*/}: signature not checked ($sig); relying on apt's index hashes" ;;
    esac
    ensure_build_deps

    if [[ ! -e $build/.unpacked ]]; then
        rm -rf "$build"
        mkdir -p "$build"
        log "$name: unpacking ${orig##*/}"
        tar -xf "$orig" -C "$build" --strip-components=1
        touch "$build/.unpacked"
    fi
    if [[ ! -e $build/.configured ]]; then
        log "$name: configuring (log: $log)"
        (cd "$build" && ./configure --disable-gil --enable-shared --with-ensurepip=no \
            --prefix="$prefix" LDFLAGS="-Wl,-rpath,$prefix/lib") >"$log" 2>&1 ||
            fail "configure failed, see $log"
        touch "$build/.configured"
    fi
    if [[ ! -e $build/.built ]]; then
        log "$name: building with make -j$JOBS (takes several minutes; log: $log)"
        make -C "$build" -j"$JOBS" >>"$log" 2>&1 || fail "make failed, see $log"
        touch "$build/.built"
    fi
    log "$name: installing into $prefix"
    make -C "$build" install >>"$log" 2>&1 || fail "make install failed, see $log"
    [[ -x $(ft_exe "$name") ]] || fail "$(ft_exe "$name") missing after make install"
    check_dynload "$name" "$(ft_exe "$name")"
    [[ ${PYSCRY_KEEP_BUILD:-} == 1 ]] || rm -rf "$build"
}

provision_ft() {
    local name
    for name in 3.13t 3.14t; do
        cached "$name" && continue
        attempt ft_build "$name"
        if ((ATTEMPT_RC == 0)); then
            finish "$name" "$(ft_exe "$name")"
        else
            unavailable "$name" "$ATTEMPT_REASON"
        fi
    done
}

# ---------------------------------------------------------------------------------------
# Interpreters the machine already has
# ---------------------------------------------------------------------------------------

provision_pyenv() {
    local v d best
    for v in 2.7 3.6 3.7 3.8 3.9 3.10 3.11 3.12 3.13; do
        # The newest X.Y.Z build (not e.g. X.Y.Zt or X.Y-dev).
        best=
        for d in "$PYENV_ROOT/versions/$v".*; do
            [[ ${d##*/} =~ ^${v//./\\.}\.[0-9]+$ && -x $d/bin/python ]] || continue
            if [[ -z $best || $(printf '%s\n' "$best" "$d" | sort -V | tail -n 1) == "$d" ]]; then
                best=$d
            fi
        done
        if [[ -z $best ]]; then
            unavailable "$v" "no pyenv build in $PYENV_ROOT/versions/$v.*"
        else
            register "$v" "$best/bin/python" || true
        fi
    done
}

provision_system() {
    if [[ -x /usr/bin/python3.11 ]]; then
        register 3.11-debian-static /usr/bin/python3.11 || true
    else
        unavailable 3.11-debian-static "/usr/bin/python3.11 is not installed"
    fi
}

# ---------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------

# One provisioning run at a time per cache directory.
exec 9>"$CACHE/.lock"
if ! flock -n 9; then
    log "waiting for another provisioning run on $CACHE"
    flock 9
fi

provision_pyenv
provision_system
provision_sid
provision_ft

if ((${#LISTED[@]} == 0)); then
    log "no interpreter available"
    exit 1
fi

# The list, to list.txt and to stdout.
list=$(for name in "${ALL_NAMES[@]}"; do
    [[ -n ${LISTED[$name]:-} ]] && printf '%s %s\n' "$name" "${LISTED[$name]}"
done || true)
printf '%s\n' "$list" >"$CACHE/list.txt.tmp"
mv "$CACHE/list.txt.tmp" "$CACHE/list.txt"
log "${#LISTED[@]} of ${#ALL_NAMES[@]} interpreters available (list in $CACHE/list.txt) after ${SECONDS}s"
printf '%s\n' "$list"
