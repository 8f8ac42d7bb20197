# needle: top-level entry points. CMake does the building; this file installs
# what is missing (Debian packages), then wraps the usual commands.
#   make        release build: build/needle, build/libneedle.{a,so}
#   make test   sanitized build (ASan+UBSan), cmocka unit tests via ctest, pytest e2e, clang build
#   make serve  release build, then `needle serve --data ./needle-data` in the foreground
#               (SERVE_ARGS="--listen 0.0.0.0:6400 --api-key K" to pass options)
#   make demo   generate a small data set, import it, benchmark it
#   make bench  benchmarks against hnswlib/FAISS (needs ../shared/data or the Debian datasets)

PY      := /usr/bin/python3
JOBS    := $(shell nproc 2>/dev/null || echo 2)
DEB_PKGS := cmake gcc clang make pkg-config libcmocka-dev libopenblas-dev libjansson-dev libroaring-dev libmicrohttpd-dev \
            python3 python3-pytest python3-numpy python3-venv
BENCH_PKGS := python3-hnswlib python3-faiss

.PHONY: all build deps bench-deps test unit e2e clang-check serve demo bench bench-quick clean

all: build

deps:
	@missing=""; for p in $(DEB_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

bench-deps:
	@$(MAKE) --no-print-directory deps DEB_PKGS="$(DEB_PKGS) $(BENCH_PKGS)"

build: deps
	cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DNEEDLE_TESTS=OFF >/dev/null
	cmake --build build -j$(JOBS)

build-asan/needle: deps FORCE
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNEEDLE_SANITIZE=ON >/dev/null
	cmake --build build-asan -j$(JOBS)

FORCE:

export ASAN_OPTIONS := detect_leaks=1:abort_on_error=0:strict_string_checks=1
export UBSAN_OPTIONS := print_stacktrace=1:halt_on_error=1
export OPENBLAS_NUM_THREADS := 1

unit: build-asan/needle
	cd build-asan && ctest --output-on-failure -j$(JOBS)

e2e: build-asan/needle
	NEEDLE_BIN=$(CURDIR)/build-asan/needle $(PY) -m pytest -q tests/e2e

clang-check: deps
	cmake -S . -B build-clang -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build build-clang -j$(JOBS)

test: unit e2e clang-check

SERVE_ARGS ?=
serve: build
	build/needle serve --data ./needle-data $(SERVE_ARGS)

demo: build
	$(PY) bench/gen.py --n 20000 --dim 64 --queries 200 --out build/demo
	rm -rf build/demo-data
	build/needle import demo build/demo/base.fvecs --dim 64 --metric l2 --data build/demo-data
	build/needle bench demo --queries build/demo/query.fvecs --truth build/demo/truth.ivecs --k 10 --ef 16,32,64,128 --data build/demo-data

bench: build bench-deps
	bench/run.sh

bench-quick: build bench-deps
	NEEDLE_BENCH_QUICK=1 bench/run.sh

clean:
	rm -rf build build-asan build-clang
