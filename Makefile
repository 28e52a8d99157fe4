# The two set-up commands of the README: `make demo` and `make test`. Both install missing
# Debian packages, configure and build in Release, then run the demo or the whole suite.
BUILD ?= build
JOBS ?= $(shell nproc)
DEMO_MODEL ?= $(BUILD)/fixtures/models/tiny-a-q8_0.gguf
DEMO_MMPROJ ?= $(BUILD)/fixtures/models/tiny-a-mmproj-f16.gguf
DEMO_VIDEO ?= assets/demo-4s-320x180.mp4
# The shapes-world model (assets/models/README.md): what `make demo` and `make eval` run.
SHAPES_MODEL ?= assets/models/reel-shapes.gguf
SHAPES_MMPROJ ?= assets/models/reel-shapes-mmproj.gguf
SHAPES_VIDEO ?= assets/shapes-clip.mp4
SHAPES_IMAGE ?= assets/shapes-image.png

.PHONY: all deps build demo eval train test sanitize fuzz bench clean deps-aarch64 build-aarch64 \
        test-aarch64

all: build

deps:
	@scripts/install-deps.sh

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release
	cmake --build $(BUILD) -j $(JOBS)

demo: build
	@echo "== Reel demo: a tiny model of Qwen3-VL's exact architecture (1.3M weights + the real"
	@echo "== 151936-token vocabulary), trained on a synthetic shapes world (assets/models/README.md),"
	@echo "== describes a shipped clip and answers a question about a shipped image, greedily."
	@echo "== It is still weak (held-out accuracy in assets/models/README.md); the truth is printed first."
	@echo "== With the official Qwen3-VL files, see README."
	@echo "== truth: A red triangle moving up, a red circle moving right and a blue square moving right."
	./$(BUILD)/reel -m $(SHAPES_MODEL) --mmproj $(SHAPES_MMPROJ) --video $(SHAPES_VIDEO) \
	    -p "Describe the video." --temp 0 -n 40 --verbose
	@echo "== truth: red"
	./$(BUILD)/reel -m $(SHAPES_MODEL) --mmproj $(SHAPES_MMPROJ) --video $(SHAPES_VIDEO) \
	    -p "What color is the circle?" --temp 0 -n 8
	@echo "== truth: square"
	./$(BUILD)/reel -m $(SHAPES_MODEL) --mmproj $(SHAPES_MMPROJ) --image $(SHAPES_IMAGE) \
	    -p "What shape is the yellow object?" --temp 0 -n 8 --verbose

# The shapes-world model's accuracy on the held-out set through the reel binary, per template,
# at the default 2 fps and with --frames 8, and its agreement with transformers (tests/eval/).
eval: build
	REEL_EVAL_VERBOSE=1 REEL_EVAL_FULL=1 ./$(BUILD)/tests/eval/test_eval

# Retrain the shapes-world model from scratch (CPU, ~1 h on 2 cores; Python venv in
# tools/train/.venv) and rewrite assets/models/, the held-out set and its transformers answers.
train:
	tools/train/run.sh

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# The suite again under AddressSanitizer + UndefinedBehaviorSanitizer (CI runs this too).
sanitize: deps
	cmake -S . -B $(BUILD)-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DREEL_SANITIZE=ON
	cmake --build $(BUILD)-asan -j $(JOBS)
	# The shapes-world accuracy test (test_eval) runs the same code paths as the CLI suites,
	# which do run here; under the sanitizers it would only add minutes.
	cd $(BUILD)-asan && ctest --output-on-failure -j $(JOBS) -E '^test_eval$$'


# 64-bit ARM (Raspberry Pi 4/5, RK3588 boards), cross-compiled with Debian's
# g++-aarch64-linux-gnu against its arm64 libraries (multiarch), into $(BUILD_AARCH64)/ (the
# binary: $(BUILD_AARCH64)/reel). test-aarch64 runs the whole suite under qemu-aarch64 once per
# CPU model of AARCH64_CPUS: cortex-a72 (NEON only: Raspberry Pi 4), cortex-a76 (dotprod, fp16:
# RK3588, Raspberry Pi 5), max (adds i8mm, SVE). AARCH64_TARGETS limits what is built (CI).
BUILD_AARCH64 ?= build-aarch64
AARCH64_CPUS ?= cortex-a72 cortex-a76 max
AARCH64_TARGETS ?= all
CTEST_ARGS ?=
deps-aarch64:
	@scripts/install-deps-aarch64.sh

# Through ccache (installed by deps-aarch64): a fresh clone recompiles only what changed.
build-aarch64: deps-aarch64
	cmake -S . -B $(BUILD_AARCH64) -DCMAKE_BUILD_TYPE=Release \
	    -DCMAKE_TOOLCHAIN_FILE=$(abspath cmake/aarch64-linux-gnu.cmake) \
	    -DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache
	cmake --build $(BUILD_AARCH64) -j $(JOBS) --target $(AARCH64_TARGETS)

# The tests labelled cpu_features pick their own CPU model (QEMU_CPU in their environment):
# they run once, after the loop over AARCH64_CPUS.
test-aarch64: build-aarch64
	set -e; for cpu in $(AARCH64_CPUS); do \
	    echo "== tests under qemu-aarch64, QEMU_CPU=$$cpu"; \
	    (cd $(BUILD_AARCH64) && QEMU_CPU=$$cpu ctest --output-on-failure -j $(JOBS) \
	        -LE cpu_features $(CTEST_ARGS)); \
	done
	echo "== per-model checks (each sets its own QEMU_CPU)"
	cd $(BUILD_AARCH64) && ctest --output-on-failure -j $(JOBS) -L cpu_features $(CTEST_ARGS)

# Every libFuzzer target (clang, ASan+UBSan) for FUZZ_SECONDS each, from its seed corpus in
# fuzz/corpus/; fails on any crash, leak, timeout or out-of-memory (scripts/fuzz-ci.sh).
FUZZ_SECONDS ?= 60
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_JOBS=$(JOBS) FUZZ_BUILD_DIR=$(abspath $(BUILD))-fuzz \
	    scripts/fuzz-ci.sh

# Kernel benchmarks (Google Benchmark; REEL_BENCH_THREADS, BENCH_ARGS e.g.
# --benchmark_filter=Gemv), then `reel bench` on the bundled tiny model: a smoke run of the
# end-to-end timing (prefill, decode, vision encoder). The tiny model fits in cache, so its
# tokens/s and roofline fractions say nothing about a real model; scripts/bench-report.sh
# measures 2B-shaped models.
BENCH_MODEL ?= $(BUILD)/fixtures/models/tiny-a-q8_0.gguf
BENCH_MMPROJ ?= $(BUILD)/fixtures/models/tiny-a-mmproj-f16.gguf
bench: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release
	cmake --build $(BUILD) -j $(JOBS) --target bench_ops bench_media reel fixtures
	./$(BUILD)/bench/bench_ops $(BENCH_ARGS)
	./$(BUILD)/bench/bench_media
	@echo "== reel bench on the tiny random-weight model (a smoke run, not a real model's speed)"
	./$(BUILD)/reel bench -m $(BENCH_MODEL) --mmproj $(BENCH_MMPROJ) -r 3

clean:
	rm -rf $(BUILD) $(BUILD)-asan $(BUILD)-fuzz $(BUILD_AARCH64)
