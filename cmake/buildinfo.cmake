# buildinfo.cmake — version and build id for the boot banner and `version`.
# The header is rewritten only when its content changes, so an unchanged
# tree does not relink the firmware.
set(SHR_BUILDINFO_H ${CMAKE_BINARY_DIR}/generated/shr_buildinfo.h)
add_custom_target(buildinfo
  COMMAND ${CMAKE_COMMAND} -DSRC=${CMAKE_SOURCE_DIR} -DOUT=${SHR_BUILDINFO_H}
          -DVERSION=${PROJECT_VERSION} -P ${CMAKE_SOURCE_DIR}/cmake/buildinfo_gen.cmake
  BYPRODUCTS ${SHR_BUILDINFO_H}
  COMMENT "build id")
add_library(shr_buildinfo INTERFACE)
target_include_directories(shr_buildinfo INTERFACE ${CMAKE_BINARY_DIR}/generated)
add_dependencies(shr_buildinfo buildinfo)
