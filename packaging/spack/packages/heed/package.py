# Spack recipe for heed. Use it from this checkout:
#
#   spack repo add packaging/spack
#   spack install heed@main ^openmpi            # or ^mpich, ^cray-mpich, ...
#   spack load heed && heed doctor
#
# heed has no release tarball yet: `main` is cloned from the checkout this
# file lives in (or from $HEED_GIT, any git URL). Inside a Spack environment
# `spack develop --path /path/to/heed heed@main` builds the working tree.
import os

from spack.package import *

try:  # Spack >= 1.0: the build systems live in the builtin repository
    from spack_repo.builtin.build_systems.cmake import CMakePackage  # noqa: F811
except ImportError:  # older Spack: spack.package exports CMakePackage
    pass

_checkout = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))


class Heed(CMakePackage):
    """Distributed trainer for attention models (Transformers, BERT-style
    classifiers, ViTs, CNNs with attention) in C11: data-parallel over MPI,
    OpenBLAS GEMMs, collective checkpoints in parallel HDF5."""

    homepage = "file://" + _checkout
    git = os.environ.get("HEED_GIT", "file://" + _checkout)

    version("main", branch="main")

    variant("native", default=False, description="Tune for the build host (-march=native)")
    variant("tests", default=False, description="Build the cmocka tests (ctest)")

    depends_on("c", type="build")
    depends_on("cmake@3.18:", type="build")
    depends_on("pkgconfig", type="build")

    depends_on("mpi")
    # heed writes checkpoints collectively: only the MPI build of HDF5 will do.
    depends_on("hdf5+mpi~fortran")
    # pthreads, not OpenMP: idle OpenMP threads spin and slow down the other
    # ranks on shared cores.
    depends_on("openblas threads=pthreads")
    depends_on("libinih")
    depends_on("cjson")
    depends_on("libpng")
    depends_on("cmocka", when="+tests")

    def cmake_args(self):
        return [
            self.define_from_variant("HEED_NATIVE", "native"),
            self.define("HEED_BUILD_TESTS", self.spec.satisfies("+tests") or self.run_tests),
            self.define("HEED_BUILD_BENCH", False),
            # Let CMake's FindHDF5 pick Spack's parallel HDF5 (there is no
            # hdf5-openmpi.pc outside Debian).
            self.define("HDF5_PREFER_PARALLEL", True),
        ]
