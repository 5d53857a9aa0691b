#!/usr/bin/env bash
# The whole test suite: install what is missing and build with warnings as
# errors (scripts/setup.sh), prepare test data (scripts/prepare_test_data.sh,
# when it exists), run every ctest test, print a summary. Exits non-zero on
# any failure. Works from any directory; CI runs it through .ci/run.
#
# Usage: scripts/test.sh [extra ctest arguments, e.g. -L mpi or -R attention]
#
# Environment:
#   BUILD_DIR   build folder (default: build)
#   CMAKE_ARGS  extra cmake arguments (-DHEED_WERROR=ON is always added)
#   TEST_JOBS   tests run at once (default: the number of cores). MPI tests
#               declare their rank count, so ctest never runs more ranks at
#               once than this.
set -euo pipefail
# shellcheck source=scripts/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$HEED_ROOT"

start=$(date +%s)
build_dir=${BUILD_DIR:-build}
export BUILD_DIR=$build_dir

log "step 1/3: setup and build (-DHEED_WERROR=ON)"
# --with-slurm: the cluster tests start a Slurm cluster on this machine.
CMAKE_ARGS="${CMAKE_ARGS:+$CMAKE_ARGS }-DHEED_WERROR=ON" bash scripts/setup.sh --with-slurm ||
  die "setup/build failed; no tests were run"

# Child mpiruns (ctest MPI tests, end-to-end runs) inherit this environment.
mpi_env

if [ -f scripts/prepare_test_data.sh ]; then
  log "step 2/3: preparing test data (scripts/prepare_test_data.sh)"
  bash scripts/prepare_test_data.sh || die "scripts/prepare_test_data.sh failed; no tests were run"
else
  log "step 2/3: no scripts/prepare_test_data.sh, no test data to prepare"
fi

jobs=${TEST_JOBS:-$(nproc 2>/dev/null || echo 2)}
log "step 3/3: ctest -j$jobs in $build_dir"
log_file=$build_dir/test-output.log
set +e
ctest --test-dir "$build_dir" --output-on-failure --no-tests=error -j"$jobs" "$@" 2>&1 | tee "$log_file"
rc=${PIPESTATUS[0]}
set -e

elapsed=$(($(date +%s) - start))
echo
echo "==================== heed test summary ===================="
summary=$(grep -E '^[0-9]+% tests passed' "$log_file" || true)
echo "${summary:-no ctest summary line (see $log_file)}"
if [ "$rc" -ne 0 ]; then
  # ctest lists the failures after "The following tests FAILED:".
  sed -n '/The following tests FAILED:/,$p' "$log_file"
  echo "RESULT: FAILED (ctest exit code $rc, ${elapsed}s; full output in $log_file)"
  exit "$rc"
fi
echo "RESULT: OK (${elapsed}s; full output in $log_file)"
