#!/usr/bin/env bash
# heed doctor under mpirun -n 2: reports MPI and its thread level, OpenBLAS,
# HDF5, ranks per host, every rank's binding, checks the output directory;
# an oversubscribing --threads is warned about; an unwritable directory
# fails with exit 2.
heed=$1
work=$2
. "$(dirname "$0")/lib.sh"

out=$(timeout 120 mpirun "${mpi_flags[@]}" -n 2 "$heed" doctor --out "$work/runs" 2>&1)
rc=$?
[ "$rc" = 0 ] || fail "doctor: exit $rc; output: $out"
for want in "^MPI: .*Open MPI" "thread level MPI_THREAD_" "2 ranks on 1 host" "^OpenBLAS: core " \
  "^HDF5: .*parallel" "^   0  " "^   1  " "host .*: 2 ranks, [0-9]* cores" \
  "output: .*writable" "collective parallel-HDF5 write into .*: ok" "^ready: "; do
  grep -q -- "$want" <<<"$out" || fail "doctor output lacks /$want/: $out"
done
[ ! -e "$work/runs/.heed-doctor-probe" ] || fail "doctor left its probe file behind"
echo "ok: doctor reports libraries, ranks, binding and the output directory"

cores=$(nproc)
out=$(timeout 120 mpirun "${mpi_flags[@]}" -n 2 "$heed" doctor --out "$work/runs" \
  --threads "$cores" 2>&1)
grep -q "WARNING: host .*: 2 ranks x $cores threads = $((2 * cores)) > $cores cores" <<<"$out" ||
  fail "no oversubscription warning for 2 ranks x $cores threads: $out"
echo "ok: 2 ranks x $cores threads on $cores cores is warned about"

touch "$work/file"
out=$(timeout 120 mpirun "${mpi_flags[@]}" -n 2 "$heed" doctor --out "$work/file/sub" 2>&1)
rc=$?
[ "$rc" = 2 ] || fail "unwritable output directory: exit $rc, want 2; output: $out"
grep -q "FAILED: .*$work/file/sub" <<<"$out" || fail "no FAILED line naming the directory: $out"
echo "ok: an unusable output directory fails with exit 2"
echo "OK: doctor"
