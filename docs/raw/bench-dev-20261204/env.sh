# Source on the device: unpack the carried Debian packages into /tmp/root
# and point PATH, the loader and Open MPI at them.
R=/tmp/root
if [ ! -x $R/usr/bin/mpirun ]; then
  mkdir -p $R
  for f in .dev-dist/debs/*.deb; do dpkg -x "$f" $R; done
fi
A=x86_64-linux-gnu
export PATH=$R/usr/bin:$PATH
export LD_LIBRARY_PATH=$R/usr/lib/$A/openmpi/lib:$R/usr/lib/$A/hdf5/openmpi:$R/usr/lib/$A/openblas-pthread:$R/usr/lib/$A:$R/lib/$A
export OPAL_PREFIX=$R/usr
export OMPI_MCA_btl=self,vader OMPI_MCA_pml=ob1 OMPI_MCA_mtl=^ofi,psm,psm2 OMPI_MCA_osc=^ucx
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
export PYTHON=python3
