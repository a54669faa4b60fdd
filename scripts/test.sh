#!/usr/bin/env bash
# The README's second command: install what is missing, build, and run every test.
#
#   scripts/test.sh
#
# Builds twice: a release build (warnings are errors at -O2 too) and an
# AddressSanitizer + UndefinedBehaviorSanitizer build, which runs the whole ctest suite:
# cmocka unit tests and integration tests with real redis-server and pipe2-authd processes.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
jobs=$(nproc)

"$root/scripts/install-deps.sh" --test

echo "==> npm ci (tests/integration/node)"
(cd tests/integration/node && npm ci --no-audit --no-fund --loglevel=error >/dev/null)

echo "==> release build"
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DP2A_TESTS=OFF >/dev/null
cmake --build build/release -j"$jobs" >/dev/null

echo "==> sanitizer build (ASan + UBSan)"
cmake -S . -B build/asan -DCMAKE_BUILD_TYPE=Debug -DP2A_SANITIZE=ON >/dev/null
cmake --build build/asan -j"$jobs" >/dev/null

echo "==> ctest (unit and integration, under ASan + UBSan)"
cd build/asan
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
ctest --output-on-failure -j"$jobs"
