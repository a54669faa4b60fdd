#!/usr/bin/env bash
# Builds the libFuzzer targets with clang and runs each for SECONDS (default 20), as many at
# once as there are cores, starting from the committed seeds in tests/fuzz/corpus/<target>/
# (read-only here: what a run finds goes to build/fuzz/corpus/<target>/). A crash, leak or sanitizer report fails the run and
# leaves the reproducer in build/fuzz/artifacts/.
#
#   tests/fuzz/run.sh [SECONDS] [target ...]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
secs="${1:-20}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(token grpc_message config svckeys h2_server oauth h1scan)
CC=clang cmake -S "$root" -B "$root/build/fuzz" -DCMAKE_BUILD_TYPE=Debug -DP2A_FUZZ=ON \
  -DP2A_TESTS=OFF >/dev/null
cmake --build "$root/build/fuzz" -j"$(nproc)" >/dev/null
mkdir -p "$root/build/fuzz/artifacts" "$root/build/fuzz/logs"

# One target for SECONDS; its summary lines in build/fuzz/logs/<target>.log.
run_one() {
  local t=$1 work="$root/build/fuzz/corpus/$1" dict=()
  mkdir -p "$work"
  rm -f "$root/build/fuzz/artifacts/$t-"*
  [ -f "$root/tests/fuzz/$t.dict" ] && dict=(-dict="$root/tests/fuzz/$t.dict")
  "$root/build/fuzz/tests/fuzz/fuzz_$t" -max_total_time="$secs" -max_len=16384 -timeout=10 \
    -print_final_stats=1 -artifact_prefix="$root/build/fuzz/artifacts/$t-" "${dict[@]}" \
    "$work" "$root/tests/fuzz/corpus/$t" 2>&1 |
    grep -E "^(stat::number_of_executed_units|stat::new_units_added)|DONE.*cov:|ERROR|SUMMARY|Test unit written" \
      >"$root/build/fuzz/logs/$t.log" || true
}

# As many targets at once as there are cores (each is one process), in the order given.
jobs=$(nproc)
pids=()
for t in "${targets[@]}"; do
  echo "==> fuzz_$t for ${secs}s"
  run_one "$t" &
  pids+=($!)
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
done
for p in "${pids[@]}"; do wait "$p" || true; done
failed=0
for t in "${targets[@]}"; do
  sed "s/^/fuzz_$t: /" "$root/build/fuzz/logs/$t.log"
  # grep ate the exit status: a crash leaves an artifact
  if ls "$root/build/fuzz/artifacts/$t-"* >/dev/null 2>&1; then
    echo "fuzz_$t: a crash was found; reproducer in build/fuzz/artifacts/" >&2
    failed=1
  fi
done
[ "$failed" = 0 ] || exit 1
echo "fuzzing: no crash in ${#targets[@]} targets"
