#!/usr/bin/env bash
# Builds a release pipe2-authd and runs the benchmarks, printing each figure next to its
# reference measured in the same invocation. Loopback only; everything started is stopped.
#
#   tests/bench/run.sh            both suites
#   tests/bench/run.sh introspect throughput, latency and memory of Introspect
#   tests/bench/run.sh revocation propagation of revocations across replicas
#   tests/bench/run.sh signin     sign-ins per second, and Introspect p99 during a sign-in storm
#   tests/bench/run.sh gateway    forward-auth vs nginx, RFC 7662 vs the peer, Check vs Introspect
#   tests/bench/run.sh exchange   Introspect of a cached exchanged token against a plain one
#                                 (callgrind, one run)
#   tests/bench/run.sh ab BEFORE  instructions per forward-auth and Introspect: the pipe2-authd
#                                 at BEFORE (another build) against this one (callgrind)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
"$root/scripts/install-deps.sh" --bench
(cd "$root/tests/bench/peer" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
cmake -S "$root" -B "$root/build/release" -DCMAKE_BUILD_TYPE=Release -DP2A_TESTS=OFF >/dev/null
cmake --build "$root/build/release" -j"$(nproc)" >/dev/null
export P2A_AUTHD="$root/build/release/pipe2-authd"
what="${1:-all}"
if [ "$what" = all ] || [ "$what" = introspect ]; then
  echo "== Introspect: throughput, latency, memory (server on CPU 0, load on CPU 1)"
  /usr/bin/python3 "$root/tests/bench/introspect_bench.py" --runs 3
fi
if [ "$what" = all ] || [ "$what" = signin ]; then
  echo "== sign-ins: the hashing pool, and Introspect during a sign-in storm (server on CPU 0)"
  /usr/bin/python3 "$root/tests/bench/signin_bench.py" --runs 3
fi
if [ "$what" = all ] || [ "$what" = gateway ]; then
  echo "== gateways: forward-auth, RFC 7662 on the workers, Envoy Check (server on CPU 0)"
  /usr/bin/python3 "$root/tests/bench/gateway_bench.py" --runs 3
fi
if [ "$what" = all ] || [ "$what" = exchange ]; then
  echo "== token exchange: a cached exchanged token's Introspect against a plain token's (callgrind)"
  /usr/bin/python3 "$root/tests/bench/exchange_bench.py" --authd "$P2A_AUTHD"
fi
if [ "$what" = ab ]; then
  echo "== before/after: instructions a cached forward-auth and Introspect cost (callgrind)"
  /usr/bin/python3 "$root/tests/bench/ab_bench.py" --before "$2" --after "$P2A_AUTHD"
fi
if [ "$what" = all ] || [ "$what" = revocation ]; then
  echo "== revocation propagation (3 replicas, 1 redis-server)"
  /usr/bin/python3 "$root/tests/bench/revocation_propagation.py"
fi
