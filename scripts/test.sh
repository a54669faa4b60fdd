#!/usr/bin/env bash
# The README's second command: install what is missing, build, and run every test.
#
#   scripts/test.sh
#
# Checks the layers (scripts/check_layers.py) and the file-top comments
# (scripts/check_comments.py), runs clang-tidy (the checks in .clang-tidy)
# and cppcheck over src/ and facade/, warnings being errors. Builds three times: a release
# build (warnings are errors at -O3 too); an AddressSanitizer + UndefinedBehaviorSanitizer
# build, which runs the whole ctest suite (cmocka unit tests, and integration tests with
# real redis-server and pipe2-authd processes); and a ThreadSanitizer build, which runs the
# unit tests and the integration suites labelled `threads` in tests/CMakeLists.txt (several
# workers, the subscriber and the lock-free revocation set, the key watcher, failover).
# Fuzz targets run side by side, one per core; clang-tidy too.
set -euo pipefail
SECONDS=0
step() { echo "==> [${SECONDS}s] $*"; }

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
jobs=$(nproc)

"$root/scripts/install-deps.sh" --test

step "npm ci (tests/integration/node, examples/mcp-server), beside the builds"
npm_log=$(mktemp)
( (cd tests/integration/node && npm ci --no-audit --no-fund --loglevel=error) &&
  (cd examples/mcp-server && npm ci --no-audit --no-fund --loglevel=error) ) >"$npm_log" 2>&1 &
npm_pid=$!

step "release build"
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DP2A_TESTS=OFF >/dev/null
cmake --build build/release -j"$jobs" >/dev/null

step "sanitizer build (ASan + UBSan)"
cmake -S . -B build/asan -DCMAKE_BUILD_TYPE=Debug -DP2A_SANITIZE=ON >/dev/null
cmake --build build/asan -j"$jobs" >/dev/null

wait "$npm_pid" || { cat "$npm_log"; exit 1; }
rm -f "$npm_log"

step "layers: every include within its layer or below (scripts/check_layers.py)"
/usr/bin/python3 scripts/check_layers.py
step "file-top comments name what exists (scripts/check_comments.py)"
/usr/bin/python3 scripts/check_comments.py

step "static analysis: clang-tidy (.clang-tidy) and cppcheck, warnings are errors"
printf '%s\n' src/*/*.c facade/*.c |
  xargs -P"$jobs" -n4 clang-tidy -p build/release --quiet 2>/dev/null
# cppcheck reads no system header: it is given <sys/queue.h> (our lists) to expand
queue_h=$(echo '#include <sys/queue.h>' | cc -E -x c - | grep -m1 -o '"/[^"]*sys/queue.h"' | tr -d '"')
cppcheck --quiet --enable=warning,performance,portability --inline-suppr --std=c11 \
  --include="$queue_h" $(printf -- '-I %s ' src/*/ facade) --error-exitcode=1 src facade

step "fuzzing smoke run: each libFuzzer target for 10 s"
tests/fuzz/run.sh 10

step "ThreadSanitizer build"
cmake -S . -B build/tsan -DCMAKE_BUILD_TYPE=Debug -DP2A_TSAN=ON >/dev/null
cmake --build build/tsan -j"$jobs" >/dev/null

step "ctest under ThreadSanitizer (a report makes pipe2-authd exit 66: the test fails)"
(cd build/tsan && TSAN_OPTIONS="halt_on_error=0:exitcode=66" \
  ctest --output-on-failure -j"$jobs" -L 'unit|threads')

step "ctest (unit and integration, under ASan + UBSan)"
cd build/asan
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
# one more suite than cores: several suites spend most of their time waiting (a failover, a
# minute's aggregates, a browser), and the suite that measures answers runs alone
ctest --output-on-failure -j"$((jobs + 1))"
echo "==> [${SECONDS}s] done"
