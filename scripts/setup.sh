#!/usr/bin/env bash
# Install what heed needs on Debian 12 (only what is missing) and build it.
#
# Usage: scripts/setup.sh [--with-torch] [--with-wordnet] [--with-slurm] [--no-build]
#   --with-torch    also PyTorch, matplotlib and scikit-learn (benchmarks
#                   against PyTorch, reference fixtures, baselines, plots;
#                   the test suite does not need them)
#   --with-wordnet  also wordnet-base (scripts/prepare_wordnet.py)
#   --with-slurm    also slurm-wlm, munge and iproute2 (the cluster tests in
#                   tests/cluster: a Slurm cluster and several hosts as
#                   network namespaces on this machine; scripts/test.sh
#                   asks for them)
#   --no-build      install packages only
#
# Environment:
#   BUILD_DIR   build folder (default: build, relative to the repository root)
#   CMAKE_ARGS  extra arguments for the cmake configure step, word-split,
#               e.g. CMAKE_ARGS="-DHEED_WERROR=ON -DHEED_NATIVE=ON"
#
# Idempotent: packages are checked with dpkg-query first; apt-get update and
# apt-get install run only when something is missing (as root, or via sudo).
# Works from any directory.
set -euo pipefail
# shellcheck source=scripts/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

usage() { sed -n '2,22s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; }

with_torch=0
with_wordnet=0
with_slurm=0
build=1
for arg in "$@"; do
  case $arg in
    --with-torch) with_torch=1 ;;
    --with-wordnet) with_wordnet=1 ;;
    --with-slurm) with_slurm=1 ;;
    --no-build) build=0 ;;
    -h | --help)
      usage
      exit 0
      ;;
    *)
      usage >&2
      die "unknown option '$arg'"
      ;;
  esac
done

packages=(
  build-essential cmake pkg-config
  libopenmpi-dev openmpi-bin
  libopenblas-dev
  libhdf5-openmpi-dev hdf5-tools
  libcmocka-dev libinih-dev libcjson-dev libpng-dev
  python3-h5py python3-numpy
  dataset-fashion-mnist
)
[ "$with_torch" = 1 ] && packages+=(python3-torch python3-matplotlib python3-sklearn)
[ "$with_wordnet" = 1 ] && packages+=(wordnet-base)
[ "$with_slurm" = 1 ] && packages+=(slurm-wlm munge iproute2)

command -v dpkg-query >/dev/null 2>&1 ||
  die "dpkg-query not found: this script installs with apt on Debian 12 (bookworm); elsewhere install the packages listed in it by hand"

missing=()
for p in "${packages[@]}"; do
  is_installed "$p" || missing+=("$p")
done

if [ "${#missing[@]}" -eq 0 ]; then
  log "all ${#packages[@]} packages already installed"
else
  log "installing ${#missing[@]} missing packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q ||
    die "apt-get update failed (network or apt sources?)"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" ||
    die "apt-get install failed for: ${missing[*]}"
  for p in "${missing[@]}"; do
    is_installed "$p" || die "package $p is still not installed after apt-get install"
  done
  log "installed: ${missing[*]}"
fi

[ "$build" = 1 ] || exit 0

cd "$HEED_ROOT"
build_dir=${BUILD_DIR:-build}
extra=()
if [ -n "${CMAKE_ARGS:-}" ]; then
  read -r -a extra <<<"$CMAKE_ARGS"
fi
# Release by default; CMAKE_ARGS comes last so it can override any of these.
log "configuring $build_dir (Release${CMAKE_ARGS:+, $CMAKE_ARGS})"
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release ${extra[@]+"${extra[@]}"} ||
  die "cmake configure failed (see the messages above)"
jobs=$(nproc 2>/dev/null || echo 2)
log "building $build_dir with $jobs jobs"
cmake --build "$build_dir" -j"$jobs" || die "build failed (see the compiler messages above)"
build_abs=$(cd "$build_dir" && pwd)
if [ -x "$build_dir/heed" ]; then
  log "built $build_abs/heed"
else
  log "built $build_abs (no heed program yet: src/app has no sources)"
fi
