#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan, UBSan; tests/CMakeLists.txt) into
# build-fuzz/ and runs each for a bounded time on a temporary copy of its seed
# corpus, never writing into tests/fuzz/. Prints the executions per target and
# exits nonzero on any crash, leak, timeout or out-of-memory, naming the input.
#   scripts/fuzz.sh [TARGET...]          all targets when none is named
#   SEALGATE_FUZZ_SECONDS=60             time per target
#   SEALGATE_FUZZ_BUILD=build-fuzz       build directory; findings go to its findings/
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
dir=${SEALGATE_FUZZ_BUILD:-$here/build-fuzz}
seconds=${SEALGATE_FUZZ_SECONDS:-60}
findings=$dir/findings
# The targets as tests/CMakeLists.txt declares them (SEALGATE_FUZZ_TARGETS):
# one list, so that a new target is built and run here without a second edit.
mapfile -t all < <(sed -n '/^set(SEALGATE_FUZZ_TARGETS/,/)/p' "$here/tests/CMakeLists.txt" | grep -o 'fuzz_[a-z0-9_]*')
((${#all[@]})) || { echo "fuzz: no SEALGATE_FUZZ_TARGETS in tests/CMakeLists.txt" >&2; exit 2; }
targets=("$@")
((${#targets[@]})) || targets=("${all[@]}")
[[ $seconds =~ ^[1-9][0-9]*$ ]] || { echo "fuzz: SEALGATE_FUZZ_SECONDS must be a whole number of seconds" >&2; exit 2; }
command -v clang++ >/dev/null || { echo "fuzz: clang++ not found; scripts/setup.sh installs it" >&2; exit 2; }
for t in "${targets[@]}"; do
  [ -d "$here/tests/fuzz/corpus/$t" ] || { echo "fuzz: unknown target $t (known: ${all[*]})" >&2; exit 2; }
done

# -O1 and line tables only: what libFuzzer's documentation recommends, and
# about half the compile time of RelWithDebInfo's -O2 -g on this machine.
# Two jobs at most: the machine has two cores and CI shares them.
build_start=$(date +%s)
cmake -S "$here" -B "$dir" -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DSEALGATE_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -gline-tables-only" >/dev/null
nice -n 10 ninja -C "$dir" -j 2 "${targets[@]}"
echo "fuzz: built ${#targets[@]} targets in $(($(date +%s) - build_start)) s"

work=$(mktemp -d "${TMPDIR:-/tmp}/sealgate-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$findings"
export UBSAN_OPTIONS=print_stacktrace=1
failed=()
summary=()
for t in "${targets[@]}"; do
  # The run grows its corpus in the copy; the kept seeds stay as committed.
  mkdir -p "$work/$t" "$findings/$t"
  cp -R "$here/tests/fuzz/corpus/$t/." "$work/$t/"
  seeds=$(find "$work/$t" -type f | wc -l)
  args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
        -artifact_prefix="$findings/$t/")
  [ -f "$here/tests/fuzz/dict/$t.dict" ] && args+=(-dict="$here/tests/fuzz/dict/$t.dict")
  log=$findings/$t.log
  echo "fuzz: $t for ${seconds} s from $seeds seeds"
  rc=0
  nice -n 10 "$dir/tests/$t" "${args[@]}" "$work/$t" >"$log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  grown=$(find "$work/$t" -type f | wc -l)
  if [ "$rc" -ne 0 ]; then
    input=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
    echo "fuzz: $t FAILED (exit $rc) after ${execs:-?} executions; input: ${input:-none saved}; log: $log" >&2
    grep -E -m 1 -A 30 'ERROR: |fuzz invariant failed|ALARM|out-of-memory|deadly signal' "$log" >&2 || tail -n 40 "$log" >&2
    failed+=("$t")
    summary+=("$(printf '%-20s FAILED  %12s executions  input: %s' "$t" "${execs:-?}" "${input:-none}")")
  else
    summary+=("$(printf '%-20s ok      %12s executions  corpus %d -> %d' "$t" "$execs" "$seeds" "$grown")")
  fi
done

echo "fuzz: ${seconds} s per target"
printf '  %s\n' "${summary[@]}"
if ((${#failed[@]})); then
  echo "fuzz: ${#failed[@]} target(s) failed: ${failed[*]} (inputs and logs under $findings)" >&2
fi
# The closing line CI reads: targets that ran clean and targets that failed.
echo "fuzz: $((${#targets[@]} - ${#failed[@]})) passed, ${#failed[@]} failed"
((${#failed[@]} == 0))
