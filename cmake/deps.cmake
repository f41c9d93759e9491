# deps.cmake — Debian packages the build links against (tools/bootstrap
# installs them). Each failure names the package to install.
find_package(PkgConfig REQUIRED)

function(shr_require_lib var name pkg)
  find_library(${var} NAMES ${name})
  if(NOT ${var})
    message(FATAL_ERROR "library ${name} not found — run: apt-get install ${pkg} (or tools/bootstrap)")
  endif()
endfunction()

# mbedTLS 2.28 ships no pkg-config file in Debian 12.
find_path(MBEDTLS_INCLUDE_DIR mbedtls/ssl.h)
if(NOT MBEDTLS_INCLUDE_DIR)
  message(FATAL_ERROR "mbedtls/ssl.h not found — run: apt-get install libmbedtls-dev (or tools/bootstrap)")
endif()
shr_require_lib(MBEDTLS_LIB mbedtls libmbedtls-dev)
shr_require_lib(MBEDX509_LIB mbedx509 libmbedtls-dev)
shr_require_lib(MBEDCRYPTO_LIB mbedcrypto libmbedtls-dev)
add_library(mbedtls_all INTERFACE)
target_include_directories(mbedtls_all SYSTEM INTERFACE ${MBEDTLS_INCLUDE_DIR})
target_link_libraries(mbedtls_all INTERFACE ${MBEDTLS_LIB} ${MBEDX509_LIB} ${MBEDCRYPTO_LIB})

pkg_check_modules(SQLITE3 REQUIRED IMPORTED_TARGET sqlite3)
pkg_check_modules(CMOCKA REQUIRED IMPORTED_TARGET cmocka)
pkg_check_modules(SLIRP REQUIRED IMPORTED_TARGET slirp)
