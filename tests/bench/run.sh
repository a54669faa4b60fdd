#!/usr/bin/env bash
# Builds a release pipe2-authd and runs the benchmarks, printing each figure next to its
# reference measured in the same invocation. Loopback only; everything started is stopped.
#
#   tests/bench/run.sh [--revocations N]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
"$root/scripts/install-deps.sh" --test
cmake -S "$root" -B "$root/build/release" -DCMAKE_BUILD_TYPE=Release -DP2A_TESTS=OFF >/dev/null
cmake --build "$root/build/release" -j"$(nproc)" >/dev/null
echo "== revocation propagation (3 replicas, 1 redis-server)"
P2A_AUTHD="$root/build/release/pipe2-authd" /usr/bin/python3 \
  "$root/tests/bench/revocation_propagation.py" "$@"
