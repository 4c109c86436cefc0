# Finds qpatch's dependencies and defines one imported target per library:
#   qp::elf qp::dw qp::bfd qp::zydis qp::zstd qp::crypto
# Each is the Debian 12 -dev package named in the error message when missing
# (scripts/install-deps.sh installs them).
find_package(PkgConfig REQUIRED)

function(qp_pkg target module debpkg)
  pkg_check_modules(${target} IMPORTED_TARGET ${module})
  if(NOT ${target}_FOUND)
    message(FATAL_ERROR "${module} not found: install the Debian package '${debpkg}' (or run scripts/install-deps.sh)")
  endif()
  add_library(qp::${target} ALIAS PkgConfig::${target})
endfunction()

qp_pkg(elf libelf libelf-dev)
qp_pkg(dw libdw libdw-dev)
qp_pkg(zstd libzstd libzstd-dev)

function(qp_lib target lib header debpkg)
  find_library(QP_${target}_LIB NAMES ${lib})
  find_path(QP_${target}_INC NAMES ${header})
  if(NOT QP_${target}_LIB OR NOT QP_${target}_INC)
    message(FATAL_ERROR "${lib} not found: install the Debian package '${debpkg}' (or run scripts/install-deps.sh)")
  endif()
  add_library(qp_${target} INTERFACE)
  target_link_libraries(qp_${target} INTERFACE ${QP_${target}_LIB} ${ARGN})
  target_include_directories(qp_${target} SYSTEM INTERFACE ${QP_${target}_INC})
  add_library(qp::${target} ALIAS qp_${target})
endfunction()

qp_lib(zycore Zycore Zycore/Zycore.h libzycore-dev)
qp_lib(zydis Zydis Zydis/Zydis.h libzydis-dev qp::zycore)
# libbfd's header insists on a config macro; the Debian build has it set.
qp_lib(bfd bfd bfd.h binutils-dev)
target_compile_definitions(qp_bfd INTERFACE PACKAGE="qpatch" PACKAGE_VERSION="${PROJECT_VERSION}")
# libcrypto (OpenSSL 3): Ed25519 signatures of patches (format/sign.c).
qp_pkg(crypto libcrypto libssl-dev)
