# Installs the build to a temporary prefix, builds examples/ against it (CMake
# package) and the C API test against it (pkg-config), and runs them.
#   cmake -DBUILD_DIR=... -DSOURCE_DIR=... -DPREFIX=... -DFIXTURE=... -P TestInstalledPackage.cmake
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE Result OUTPUT_VARIABLE Out ERROR_VARIABLE Err)
  message(STATUS "${ARGN}\n${Out}")
  if(NOT Result EQUAL 0)
    message(FATAL_ERROR "failed (${Result}): ${ARGN}\n${Out}\n${Err}")
  endif()
endfunction()

if(NOT LIBDIR)
  set(LIBDIR lib)
endif()
file(REMOVE_RECURSE ${PREFIX})
run(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${PREFIX})
foreach(F include/lumen/lumen.h include/lumen/Codegen/KernelBuilder.h ${LIBDIR}/cmake/Lumen/LumenConfig.cmake
          ${LIBDIR}/cmake/Lumen/LumenConfigVersion.cmake ${LIBDIR}/pkgconfig/lumen.pc bin/lumen-jit)
  if(NOT EXISTS ${PREFIX}/${F})
    message(FATAL_ERROR "not installed: ${F}")
  endif()
endforeach()
run(${CMAKE_COMMAND} -S ${SOURCE_DIR}/examples -B ${PREFIX}/examples-build -DCMAKE_PREFIX_PATH=${PREFIX}
    -DCMAKE_BUILD_TYPE=Release)
run(${CMAKE_COMMAND} --build ${PREFIX}/examples-build -j 2)
run(${PREFIX}/examples-build/emit_kernel)
run(sh -c "PKG_CONFIG_PATH=${PREFIX}/${LIBDIR}/pkgconfig cc -O1 ${SOURCE_DIR}/unittests/CApi/CApiTest.c \
  $(PKG_CONFIG_PATH=${PREFIX}/${LIBDIR}/pkgconfig pkg-config --cflags --libs lumen) -o ${PREFIX}/capi_test")
# The installed generate example and C API test run on the fixture model: without
# it only the builds above are checked, which in CI (CI=true) is a failure.
if(NOT EXISTS ${FIXTURE})
  if("$ENV{CI}" STREQUAL "true")
    message(FATAL_ERROR "${FIXTURE} is missing: CI must run the installed examples on it")
  endif()
  message(WARNING "${FIXTURE} not found: the installed generate and capi_test were built, not run")
  return()
endif()
run(${PREFIX}/examples-build/generate ${FIXTURE})
# pkg-config adds no rpath: a shared install outside the loader's path needs LD_LIBRARY_PATH.
run(${CMAKE_COMMAND} -E env LD_LIBRARY_PATH=${PREFIX}/${LIBDIR} ${PREFIX}/capi_test ${FIXTURE})
