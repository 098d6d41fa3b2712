#!/bin/sh
# Run a command in a private root, as a container runtime would. Run it inside a new
# mount namespace (`unshare --mount`): every mount made here vanishes with the
# namespace, that is with the command.
#
# Usage: enter_root.sh ROOT MODE PYHOME INNER_PYHOME TESTS COMMAND [ARG...]
#   ROOT          an empty directory, the command's root
#   MODE          `pivot` (pivot_root, as containers do) or `chroot`
#   PYHOME        a Python installation, mounted at INNER_PYHOME inside ROOT
#   TESTS         the tests directory, mounted at /tests inside ROOT
#   COMMAND...    run inside ROOT, with the PID of this script
set -e
root=$1 mode=$2 pyhome=$3 inner=$4 tests=$5
shift 5

mount --make-rprivate /
mount --bind "$root" "$root"
for dir in usr etc dev proc tests "$inner"; do
    mkdir -p "$root/$dir"
done
for dir in bin sbin lib lib32 lib64 libx32; do
    if [ -L "/$dir" ]; then
        ln -sfn "$(readlink "/$dir")" "$root/$dir"
    elif [ -d "/$dir" ]; then
        mkdir -p "$root/$dir"
        mount --rbind "/$dir" "$root/$dir"
    fi
done
mount --rbind /usr "$root/usr"
mount --rbind /etc "$root/etc"
mount --rbind /dev "$root/dev"
mount -t proc proc "$root/proc"
mount --bind "$pyhome" "$root$inner"
mount --bind "$tests" "$root/tests"

cd "$root"
if [ "$mode" = pivot ]; then
    mkdir -p .oldroot
    pivot_root . .oldroot
    umount -l /.oldroot
    rmdir /.oldroot
    exec "$@"
else
    exec chroot . "$@"
fi
