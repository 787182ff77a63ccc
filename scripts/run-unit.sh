#!/bin/sh
# run-unit.sh PROBE PROG... — run every host unit-test program, natively or
# under qemu-i386 (scripts/i386-exec.sh decides with the i386 PROBE program).
#
# A program fails when it exits non-zero, runs longer than UNIT_TIMEOUT
# seconds (default 900: a hang is a failure, not a stuck CI job) or reports a
# cmocka SKIPPED test: a test that cannot run is a failure with its reason.
# Prints one summary line counting programs run, passed and failed, and how
# they were run; exits non-zero if any failed or none could run.
set -u
here=$(dirname "$0")
. "$here/i386-exec.sh"
probe=$1; shift
timeout_s=${UNIT_TIMEOUT:-900}
total=$#

if ! i386_select "$probe"; then
    echo "unit test programs: 0 run, 0 passed, $total failed (cannot run i386 programs: $I386_HOW)"
    exit 1
fi
echo "unit: running $total programs $I386_HOW"

log=$(mktemp)
trap 'rm -f "$log" "$log.rc"' EXIT
run=0; passed=0; failed=0; failed_names=""
for t in "$@"; do
    name=$(basename "$t")
    why=""
    if [ ! -x "$t" ]; then
        why="not built"
    else
        run=$((run + 1))
        # Keep the output streaming while capturing it for the SKIPPED check.
        { timeout -k 10 "$timeout_s" $I386_RUN "$t"; echo $? >"$log.rc"; } 2>&1 | tee "$log"
        rc=$(cat "$log.rc")
        if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
            why="timed out after ${timeout_s} s"
        elif [ "$rc" -ne 0 ]; then
            why="exit status $rc"
        elif grep -q '\[  SKIPPED \]' "$log"; then
            why="a test was skipped"
        fi
    fi
    if [ -z "$why" ]; then
        passed=$((passed + 1))
    else
        echo "unit: $name FAILED: $why"
        failed=$((failed + 1))
        failed_names="$failed_names $name"
    fi
done
echo "unit test programs: $run run, $passed passed, $failed failed${failed_names:+ (}${failed_names# }${failed_names:+)}; $I386_HOW"
[ "$failed" -eq 0 ] && [ "$run" -gt 0 ]
