#!/bin/sh
# Run every unit-test binary given; print one summary line; fail if any failed.
passed=0; failed=0; failed_names=""
for t in "$@"; do
    if "$t"; then passed=$((passed + 1)); else failed=$((failed + 1)); failed_names="$failed_names $(basename "$t")"; fi
done
echo "unit test programs: $passed passed, $failed failed${failed_names:+ (}${failed_names# }${failed_names:+)}"
[ "$failed" -eq 0 ]
