# What "cmake --install" puts where besides the programs (which each
# folder's CMakeLists.txt installs to CMAKE_INSTALL_BINDIR), and the Debian
# package "cpack -G DEB" makes of it.  Layout for prefix P (docs/install.md):
#   P/bin/qpatch*, P/sbin/qpatchd       programs
#   P/share/man/manN/*.N                every docs/man/*.[1-8]
#   P/share/doc/qpatch/                 README.md, docs/*.md
#   P/include/qpatch/so.h               for hand-written .so patches
#   P/lib/systemd/system/qpatchd.service  once loader/host/ has it

# Man pages: every docs/man/*.[1-8], into the section its suffix names.
# "@PROJECT_VERSION@" in a page (its .TH line) becomes the version.
file(GLOB QP_MAN_PAGES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/docs/man/*.[1-8])
foreach(page ${QP_MAN_PAGES})
  get_filename_component(name ${page} NAME)
  string(REGEX REPLACE "^.*\\.([1-8])$" "\\1" section ${name})
  configure_file(${page} ${PROJECT_BINARY_DIR}/man/${name} @ONLY)
  install(FILES ${PROJECT_BINARY_DIR}/man/${name}
    DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section})
endforeach()

# The header hand-written .so patches include (qpatch-load --so).
install(FILES ${PROJECT_SOURCE_DIR}/format/include/qpatch/so.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/qpatch)

# The documents the man pages point at (format.md, loader.md, ...).
file(GLOB QP_DOCS CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/docs/*.md)
install(FILES ${PROJECT_SOURCE_DIR}/README.md ${QP_DOCS} DESTINATION ${CMAKE_INSTALL_DOCDIR})

# The daemon's systemd unit, once it exists.  Relative to the prefix:
# /usr/lib/systemd/system for the package (prefix /usr).
set(QP_SYSTEMD_UNITDIR lib/systemd/system CACHE STRING
  "where qpatchd.service goes, relative to the install prefix unless absolute")
# (The glob only makes the next build configure again when a unit appears.)
file(GLOB QP_UNITS CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/loader/host/*.service)
if(EXISTS ${PROJECT_SOURCE_DIR}/loader/host/qpatchd.service)
  install(FILES ${PROJECT_SOURCE_DIR}/loader/host/qpatchd.service
    DESTINATION ${QP_SYSTEMD_UNITDIR})
  # the package's maintainer scripts: daemon-reload after install and
  # removal, try-restart on upgrade, stop and disable on removal; never
  # enable or start (cmake/deb/*)
  set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/cmake/deb/postinst
    ${PROJECT_SOURCE_DIR}/cmake/deb/prerm
    ${PROJECT_SOURCE_DIR}/cmake/deb/postrm)
  set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
endif()

# The Debian package: cpack -G DEB in the build directory (make deb).
set(QP_MAINTAINER "Seed 6efbaec2 maintainers <maintainers@users.noreply.h-seed-6efbaec2.example>"
  CACHE STRING "maintainer of the Debian package")
set(CPACK_PACKAGE_NAME qpatch)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT ${QP_MAINTAINER})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "live patches for running C programs")
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON) # as Debian ships programs; debug info stays in the build
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT) # qpatch_VERSION_ARCH.deb
set(CPACK_DEBIAN_PACKAGE_MAINTAINER ${QP_MAINTAINER})
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Depends: from the libraries the programs link (dpkg-shlibdeps), and
# libcrypto and libdw, which qpatch-load loads with dlopen() when it makes
# or checks a signature and unwinds a stack.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "libssl3 | libssl3t64, libdw1 | libdw1t64")
# qpatch-build runs "make CC=qpatch-cc CXX=qpatch-c++" and qpatch-cc runs cc
# (qpatch-c++ runs c++, for a build that uses it): a build host
# needs a C compiler, make and the C library headers.  Recommends, not
# Depends: a host that only applies patches (qpatch-load) needs none of it.
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "gcc | c-compiler, make, libc6-dev | libc-dev")
# (the first line of the package description is the summary above)
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION "qpatch fixes a bug in a running C program on x86-64 Linux without
restarting it.  qpatch-build turns the difference between the deployed
source tree and the fixed one into a small patch file; qpatch-load puts
it into a running process, after checking that no thread is inside the
code it replaces, and can list and undo it later.  qpatch keeps a
store of patches that qpatchd applies to every process of their binary,
also to those started later.
.
Programs must be built with qpatch-cc, a wrapper around the C compiler.
The package holds the programs, their manual pages and the documentation.")
include(CPack)
