#!/bin/sh
# i386-progs.sh: Debian's i386 programs with the shared libraries they need.
#
#   i386-progs.sh fetch DIR PKG...
#       Download PKG:i386 into DIR/debs and extract it into DIR/root, then
#       the library packages its ELF files need: whenever a package has an
#       ELF file with a NEEDED soname found nowhere in DIR/root, its direct
#       Depends/Pre-Depends are fetched the same way (dpkg-shlibdeps put
#       the package of every soname there). A package is fetched once;
#       debs already in DIR/debs are not downloaded again. So fio brings
#       55 packages, not the 108 of its whole Depends closure: python3, a
#       direct dependency, is fetched but not followed (it has no ELF
#       file), and python3.11, perl... never are.
#
#   i386-progs.sh install DEST ROOT PATH...
#       Copy each PATH (relative to ROOT, e.g. sbin/mkfs.ext4 or
#       etc/mke2fs.conf) into the tree DEST at the same place, symlinks as
#       symlinks with whatever they point to; for an ELF file also its
#       program interpreter (/lib/ld-linux.so.2) and every shared library
#       in the closure of its NEEDED entries (objdump -p), each found in its
#       RUNPATH/RPATH or in LIBDIRS of ROOT. Fails, naming the library and
#       who needs it, if one is in none of them. Prints what it added.
#       DEST is then packed as an initramfs (scripts/mkinitramfs.sh ... --
#       PATH...).
#
# Only the packages' own files are used: a symlink is resolved inside ROOT,
# never through the build machine's /lib.
set -eu

# Where Debian's i386 ld.so looks when no RUNPATH names the library.
LIBDIRS="lib/i386-linux-gnu usr/lib/i386-linux-gnu lib usr/lib"

die() { echo "i386-progs: $*" >&2; exit 1; }

is_elf() { [ -f "$1" ] && [ "$(head -c 4 "$1" | od -An -c | tr -d ' \n')" = '177ELF' ]; }

# needs ROOT REL...: one line "REL SONAME DIRS" per NEEDED entry of each
# ELF file ROOT/REL (one objdump -p for all; other files are skipped). DIRS
# are its RUNPATH/RPATH directories relative to ROOT, $ORIGIN replaced by
# REL's directory, joined by ':'; "-" when it has none.
needs() {
    (cd "$1" && shift && objdump -p "$@" 2>/dev/null) | awk '
        function flush(   i) {
            for (i = 1; i <= n; i++) print file, so[i], (dirs == "" ? "-" : dirs)
            n = 0; dirs = ""
        }
        / file format elf/ { flush(); file = $1; sub(/:$/, "", file); next }
        $1 == "NEEDED" { so[++n] = $2 }
        $1 == "RUNPATH" || $1 == "RPATH" {
            origin = file; sub(/\/[^\/]*$/, "", origin)
            k = split($2, part, ":")
            for (i = 1; i <= k; i++) {
                gsub(/\$\{?ORIGIN\}?/, "/" origin, part[i]); sub(/^\/+/, "", part[i])
                dirs = dirs (i > 1 ? ":" : "") part[i]
            }
        }
        END { flush() }'
}

# resolve ROOT REL: print REL and every path its symlinks lead to, last the
# file itself, all relative to ROOT. Returns 1 if the chain ends nowhere.
resolve() {
    _rel=$2 _n=0
    while [ -L "$1/$_rel" ]; do
        echo "$_rel"
        _to=$(readlink "$1/$_rel")
        case "$_to" in
            /*) _rel=${_to#/} ;;
            *) _rel=$(dirname "$_rel")/$_to ;;
        esac
        _rel=$(realpath -m -s --relative-to=/ "/$_rel")
        _n=$((_n + 1))
        [ $_n -lt 40 ] || return 1
    done
    echo "$_rel"
    [ -e "$1/$_rel" ]
}

# find_lib ROOT SONAME DIR...: the path relative to ROOT of SONAME in the
# first DIR (then LIBDIRS) that holds it, symlinks resolved inside ROOT.
find_lib() {
    _root=$1 _so=$2
    shift 2
    for _d in "$@" $LIBDIRS; do
        if [ -e "$_root/$_d/$_so" ] || [ -L "$_root/$_d/$_so" ]; then
            resolve "$_root" "$_d/$_so" >/dev/null && { echo "$_d/$_so"; return 0; }
        fi
    done
    return 1
}

# missing ROOT REL...: the sonames NEEDED by the ELF files among ROOT/REL...
# that are not in ROOT, one a line.
missing() {
    needs "$@" | sort -u -k2,3 | while read -r _f _so _dirs; do
        # shellcheck disable=SC2046
        find_lib "$1" "$_so" $(echo "$_dirs" | tr : ' ' | sed 's/^-$//') >/dev/null || echo "$_so"
    done
}

# ---------------------------------------------------------------- fetch
# deps PKG...: the real packages the PKG:i386 depend on (Depends,
# Pre-Depends, every alternative), without virtual ones. One apt-cache run
# for all: each run reads the whole package index.
deps() {
    # shellcheck disable=SC2046
    apt-cache depends --no-recommends --no-suggests --no-conflicts --no-breaks \
        --no-replaces --no-enhances $(for p in "$@"; do echo "$p:i386"; done) |
        awk '$1 ~ /^\|?(Pre)?Depends:$/ && $2 !~ /^</ { sub(/:(i386|any)$/, "", $2); print $2 }' | sort -u
}

# fetch_one DIR PKG: download (once) and extract PKG:i386; print the paths
# of its files relative to DIR/root.
fetch_one() {
    _deb=$(ls "$1/debs/$2"_*_i386.deb "$1/debs/$2"_*_all.deb 2>/dev/null | head -n 1 || true)
    if [ -z "$_deb" ]; then
        (cd "$1/debs" && apt-get download -q "$2:i386" >&2) || die "apt-get download $2:i386 failed"
        _deb=$(ls "$1/debs/$2"_*_i386.deb "$1/debs/$2"_*_all.deb 2>/dev/null | head -n 1 || true)
        [ -n "$_deb" ] || die "apt-get download $2:i386 left no .deb in $1/debs"
    fi
    dpkg-deb -x "$_deb" "$1/root"
    dpkg-deb --fsys-tarfile "$_deb" | tar -t | sed 's|^\./||; /\/$/d; /^$/d'
}

fetch_pkgs() {
    dir=$1
    shift
    mkdir -p "$dir/debs" "$dir/root"
    dir=$(cd "$dir" && pwd)
    if ! apt-cache show "$1:i386" >/dev/null 2>&1; then
        SUDO=""
        [ "$(id -u)" -eq 0 ] || SUDO="sudo"
        dpkg --print-foreign-architectures | grep -qx i386 || $SUDO dpkg --add-architecture i386
        $SUDO apt-get update -q || echo "i386-progs: apt-get update reported errors, continuing" >&2
    fi
    # Breadth first, one level of dependencies at a time.
    seen=" " level="$*"
    while [ -n "$level" ]; do
        lacking=""
        for pkg in $level; do
            case "$seen" in *" $pkg "*) continue ;; esac
            seen="$seen$pkg "
            files=$(fetch_one "$dir" "$pkg")
            # shellcheck disable=SC2086
            [ -z "$(missing "$dir/root" $files)" ] || lacking="$lacking $pkg"
        done
        # shellcheck disable=SC2086
        level=$([ -z "$lacking" ] || deps $lacking)
    done
    echo "i386-progs: fetched$seen"
}

# ---------------------------------------------------------------- install
# copy REL: copy ROOT/REL and what its symlinks lead to into DEST (once);
# the final file's path is left in $last.
copy() {
    chain=$(resolve "$root" "$1") || die "/$1 is not in $root (or a dangling symlink)"
    for p in $chain; do
        [ -e "$dest/$p" ] || [ -L "$dest/$p" ] || {
            mkdir -p "$dest/$(dirname "$p")"
            cp -a "$root/$p" "$dest/$p"
            added="$added /$p"
        }
        last=$p
    done
}

install_progs() {
    dest=$1 root=$2
    shift 2
    [ -d "$root" ] || die "no tree $root"
    added="" todo="" seen=" "
    for rel in "$@"; do
        copy "${rel#/}"
        is_elf "$root/$last" || continue
        todo="$todo $last"
        interp=$(readelf -l "$root/$last" | sed -n 's/.*Requesting program interpreter: \(.*\)]$/\1/p')
        [ -z "$interp" ] || copy "${interp#/}"
    done
    while [ -n "$todo" ]; do
        # shellcheck disable=SC2086
        set -- $todo
        f=$1
        shift
        todo="$*"
        case "$seen" in *" $f "*) continue ;; esac
        seen="$seen$f "
        for need in $(needs "$root" "$f" | awk '{ print $2 "@" $3 }'); do
            so=${need%@*} dirs=$(echo "${need#*@}" | tr : ' ' | sed 's/^-$//')
            # shellcheck disable=SC2086
            lib=$(find_lib "$root" "$so" $dirs) ||
                die "$so, needed by /$f, is in none of $root's ${dirs:+$dirs }$LIBDIRS (its package not fetched: scripts/i386-progs.sh fetch)"
            copy "$lib"
            todo="$todo $last"
        done
    done
    n=0
    for p in $added; do n=$((n + 1)); done
    echo "i386-progs: $n files into $dest, $(du -sk "$dest" | cut -f1) KiB there now:$added"
}

case "${1:-}" in
    fetch) shift; [ $# -ge 2 ] || die "usage: $0 fetch DIR PKG..."; fetch_pkgs "$@" ;;
    install) shift; [ $# -ge 3 ] || die "usage: $0 install DEST ROOT PATH..."; install_progs "$@" ;;
    *) die "usage: $0 fetch DIR PKG... | install DEST ROOT PATH..." ;;
esac
