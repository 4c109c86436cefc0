# Thin convenience layer over CMake; the real build is CMakeLists.txt.
#   make demo    build qpatch and patch a running program live
#   make check   build qpatch and run the whole test suite
#   make deb     the Debian package build/qpatch_VERSION_ARCH.deb (cpack -G DEB)
#   make test-deb  that package installed and used on a clean Debian 12 (root; scripts/test-deb.sh)
#   make realworld  live-patch Debian's lua5.4, redis and sqlite3 with real fixes; CASES=qemu for QEMU (docs/realworld.md)
#   make soak    a real fix applied and undone 1000 times in redis under load; N=cycles, CASES=qemu (docs/soak.md)
#   make sweep   every C fix of Debian's redis, lua5.4 and sqlite3, patched live or refused; PKGS=redis for one (docs/sweep.md)
BUILD ?= build
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=
MAKEFLAGS += --no-print-directory

.PHONY: all deps build demo check check-asan fuzz clean realworld soak sweep deb test-deb

all: build

deps:
	@scripts/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DQP_WERROR=ON $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

demo: build
	@scripts/demo.sh $(BUILD)

check: build
	@cd $(BUILD) && ctest --output-on-failure -j$(JOBS)

check-asan:
	@$(MAKE) --no-print-directory check BUILD=build-asan CMAKE_FLAGS="-DQP_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug"

deb: build
	@rm -f $(BUILD)/qpatch_*.deb
	@cd $(BUILD) && cpack -G DEB >cpack.log || { cat cpack.log; exit 1; }
	@ls $(BUILD)/qpatch_*.deb

# the package installed and used for a live patch in a clean Debian 12 chroot
test-deb:
	@scripts/test-deb.sh $(BUILD)

realworld: build
	@scripts/install-realworld-deps.sh
	@QP_BIN=$(abspath $(BUILD))/bin tests/realworld/run.sh $(CASES)

soak: build
	@scripts/install-realworld-deps.sh
	@QP_BIN=$(abspath $(BUILD))/bin $(if $(N),QP_RW_SOAK_N=$(N)) tests/realworld/soak.sh $(CASES)

sweep: build
	@scripts/install-realworld-deps.sh
	@QP_BIN=$(abspath $(BUILD))/bin tests/realworld/sweep.sh $(PKGS)

clean:
	rm -rf build build-asan
