# shellcheck shell=bash
# Shared helpers for heed's shell scripts. Source it, do not run it:
#   . "$(dirname "${BASH_SOURCE[0]}")/common.sh"
# It defines functions only and changes no shell options of the caller.

# The repository root (the parent of this scripts/ folder), whatever the cwd.
# shellcheck disable=SC2034  # used by the scripts that source this file
HEED_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# log/warn/die print with the calling script's name, e.g. "setup.sh: ...".
heed_prog=$(basename "${0:-heed}")
log() { printf '%s: %s\n' "$heed_prog" "$*"; }
warn() { printf '%s: warning: %s\n' "$heed_prog" "$*" >&2; }
die() {
  printf '%s: error: %s\n' "$heed_prog" "$*" >&2
  exit 1
}

# is_installed PKG: true when dpkg knows PKG as fully installed.
is_installed() {
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]
}

# as_root CMD...: run CMD as root: directly when we are root, else via sudo.
as_root() {
  if [ "$(id -u)" = 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    die "need root to run '$*': run this script as root or install and configure sudo"
  fi
}

# mpi_env: the environment every mpirun started by the tests should get:
# oversubscription (tests run 4 ranks on 2 cores), running as root (CI
# containers), and no CMA single-copy (containers without ptrace rights fail
# large shared-memory messages with it). Values already set are kept.
mpi_env() {
  export OMPI_MCA_rmaps_base_oversubscribe=${OMPI_MCA_rmaps_base_oversubscribe:-1}
  export OMPI_MCA_btl_vader_single_copy_mechanism=${OMPI_MCA_btl_vader_single_copy_mechanism:-none}
  if [ "$(id -u)" = 0 ]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  fi
}
