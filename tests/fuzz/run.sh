#!/usr/bin/env bash
# Builds the libFuzzer targets with clang and runs each for SECONDS (default 20), starting
# from the committed seeds in tests/fuzz/corpus/<target>/ (read-only here: what a run finds
# goes to build/fuzz/corpus/<target>/). A crash, leak or sanitizer report fails the run and
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
mkdir -p "$root/build/fuzz/artifacts"
for t in "${targets[@]}"; do
  work="$root/build/fuzz/corpus/$t"
  mkdir -p "$work"
  rm -f "$root/build/fuzz/artifacts/$t-"*
  dict=()
  [ -f "$root/tests/fuzz/$t.dict" ] && dict=(-dict="$root/tests/fuzz/$t.dict")
  echo "==> fuzz_$t for ${secs}s"
  "$root/build/fuzz/tests/fuzz/fuzz_$t" -max_total_time="$secs" -max_len=16384 -timeout=10 \
    -print_final_stats=1 -artifact_prefix="$root/build/fuzz/artifacts/$t-" "${dict[@]}" \
    "$work" "$root/tests/fuzz/corpus/$t" 2>&1 |
    grep -E "^(stat::number_of_executed_units|stat::new_units_added)|DONE.*cov:|ERROR|SUMMARY|Test unit written" ||
    true
  # grep ate the exit status: a crash leaves an artifact
  if ls "$root/build/fuzz/artifacts/$t-"* >/dev/null 2>&1; then
    echo "fuzz_$t: a crash was found; reproducer in build/fuzz/artifacts/" >&2
    exit 1
  fi
done
echo "fuzzing: no crash in ${#targets[@]} targets"
