# `cmake --install BUILD [--prefix DIR]`: the heed program, the static
# libraries, their headers under include/heed/ (included as "core/tensor.h",
# like inside the tree), a relocatable pkg-config file and the Slurm scripts.
#
#   cc my.c $(pkg-config --cflags --libs heed)      # PKG_CONFIG_PATH=DIR/lib/pkgconfig
include(GNUInstallDirs)

if(TARGET heed)
  install(TARGETS heed RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()
set(HEED_INSTALL_LIBS "")
foreach(lib heed_app heed_models heed_dist heed_core) # link order: users before what they use
  if(TARGET ${lib})
    install(TARGETS ${lib} ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
    string(APPEND HEED_INSTALL_LIBS " -l${lib}")
  endif()
endforeach()
foreach(layer core dist models app)
  file(GLOB headers ${CMAKE_SOURCE_DIR}/src/${layer}/*.h)
  install(FILES ${headers} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/heed/${layer})
endforeach()
file(GLOB HEED_SBATCH ${CMAKE_SOURCE_DIR}/slurm/*.sbatch)
install(FILES ${HEED_SBATCH} ${CMAKE_SOURCE_DIR}/slurm/README.md
        DESTINATION ${CMAKE_INSTALL_DATADIR}/heed/slurm)

# pkg-config: the dependencies pkg-config knows go to Requires; MPI (whose
# .pc name differs between Open MPI, MPICH and vendors) and an HDF5 found
# without pkg-config go in as the flags CMake found.
set(HEED_PC_REQUIRES "openblas inih libcjson libpng")
set(HEED_PC_CFLAGS "")
set(HEED_PC_LIBS "")
foreach(dir ${MPI_C_INCLUDE_DIRS})
  string(APPEND HEED_PC_CFLAGS " -I${dir}")
endforeach()
foreach(lib ${MPI_C_LIBRARIES})
  string(APPEND HEED_PC_LIBS " ${lib}")
endforeach()
if(TARGET PkgConfig::HDF5)
  string(APPEND HEED_PC_REQUIRES " hdf5-openmpi")
else()
  foreach(dir ${HDF5_C_INCLUDE_DIRS})
    string(APPEND HEED_PC_CFLAGS " -I${dir}")
  endforeach()
  foreach(lib ${HDF5_C_LIBRARIES})
    string(APPEND HEED_PC_LIBS " ${lib}")
  endforeach()
endif()
# The prefix relative to the .pc file ("../.." for lib/pkgconfig), so the
# installed tree can be moved; an absolute libdir is taken as it is.
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(HEED_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
  set(HEED_PC_LIBDIR "${CMAKE_INSTALL_LIBDIR}")
else()
  string(REGEX REPLACE "[^/]+" ".." up "${CMAKE_INSTALL_LIBDIR}/pkgconfig")
  set(HEED_PC_PREFIX "\${pcfiledir}/${up}")
  set(HEED_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
endif()
configure_file(${CMAKE_SOURCE_DIR}/heed.pc.in ${CMAKE_BINARY_DIR}/heed.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/heed.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
