# Thin wrapper around CMake. `make run` and `make test` are the quick start.
JOBS    ?= $(shell nproc)
BUILD   ?= build
CMAKE_FLAGS ?=
ifdef CI
CMAKE_FLAGS += -DKNIT_WERROR=ON
endif
FUZZ_SECONDS ?= 20

.PHONY: all deps build test asan fuzz run bench clean format

all: build

deps:
	@scripts/deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# allow_user_segv_handler=0: the sanitizers keep SIGSEGV to themselves.
# cmocka installs its own handler, which turns a crash in a thread other
# than the test's into a silent exit code (no ASan report).
asan: deps
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang \
	  -DKNIT_SANITIZE=ON $(CMAKE_FLAGS) >/dev/null
	@cmake --build build-asan -j $(JOBS)
	cd build-asan && \
	  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:allow_user_segv_handler=0 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j $(JOBS)

fuzz: deps
	@cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang \
	  -DKNIT_FUZZ=ON >/dev/null
	@cmake --build build-fuzz -j $(JOBS)
	@scripts/fuzz.sh build-fuzz $(FUZZ_SECONDS)

# The quick start: the event display (the quick-start trigger's subscriber)
# in the background, knit serve in the foreground; Ctrl-C stops both.
run: build
	@./$(BUILD)/knit event-display --listen 127.0.0.1:8081 & disp=$$!; \
	trap 'kill $$disp 2>/dev/null' EXIT INT TERM; \
	./$(BUILD)/knit serve --config examples/quickstart

bench: 
	@scripts/deps.sh --bench
	@cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build build-bench -j $(JOBS)
	@scripts/bench.sh build-bench

clean:
	rm -rf build build-asan build-fuzz build-bench
