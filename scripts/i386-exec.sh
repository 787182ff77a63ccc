# i386-exec.sh — sourced by run-unit.sh and run-i386.sh: choose how this host
# runs the i386 programs the unit tests and benches are built as.
#
# i386_select PROBE sets
#   I386_RUN  the command prefix: "" (the kernel executes i386 itself) or
#             "qemu-i386" (QEMU user-mode emulation)
#   I386_HOW  one line saying which, and why, for the summary
# and returns 1 with the reason in I386_HOW when neither works.
#
# A 64-bit kernel built without IA32 emulation refuses i386 programs with
# ENOEXEC (the shell's exit status 126, "Exec format error"); qemu-i386 from
# Debian's qemu-user then runs them with the host's i386 libc. See
# docs/testing.md.

i386_select() {
    probe=$1
    if [ ! -x "$probe" ]; then
        I386_HOW="i386 probe $probe not built"
        return 1
    fi
    native_rc=0
    "$probe" 2>/dev/null || native_rc=$?
    if [ "$native_rc" -eq 0 ]; then
        I386_RUN=""
        if grep -qx enabled /proc/sys/fs/binfmt_misc/qemu-i386 2>/dev/null; then
            I386_HOW="through binfmt_misc, which hands i386 programs to qemu-i386"
        else
            I386_HOW="natively (this host executes i386 programs)"
        fi
        return 0
    fi
    if ! command -v qemu-i386 >/dev/null 2>&1; then
        I386_HOW="this host cannot execute i386 programs (exit status $native_rc) and qemu-i386 is missing (Debian package qemu-user; make deps installs it)"
        return 1
    fi
    if ! qemu-i386 "$probe"; then
        I386_HOW="this host cannot execute i386 programs (exit status $native_rc) and qemu-i386 $probe failed too"
        return 1
    fi
    I386_RUN="qemu-i386"
    I386_HOW="under qemu-i386 user-mode emulation: this host cannot execute i386 programs (exit status $native_rc)"
    return 0
}
