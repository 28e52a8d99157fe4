# The two set-up commands of the README: `make demo` and `make test`. Both install missing
# Debian packages, configure and build in Release, then run the demo or the whole suite.
BUILD ?= build
JOBS ?= $(shell nproc)
DEMO_MODEL ?= $(BUILD)/fixtures/models/tiny-a-q8_0.gguf
DEMO_MMPROJ ?= $(BUILD)/fixtures/models/tiny-a-mmproj-f16.gguf
DEMO_VIDEO ?= assets/demo-4s-320x180.mp4

.PHONY: all deps build demo test sanitize fuzz bench clean

all: build

deps:
	@scripts/install-deps.sh

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release
	cmake --build $(BUILD) -j $(JOBS)

demo: build
	@echo "== Reel demo: describe a short video with a tiny bundled Qwen3-VL-shaped model whose"
	@echo "== weights are RANDOM, so its words are nonsense. Everything else is the real pipeline:"
	@echo "== video decoding, frame sampling, the vision encoder, the text decoder and sampling."
	@echo "== With the official files (see README):"
	@echo "==   ./$(BUILD)/reel -m Qwen3VL-2B-Instruct-Q4_K_M.gguf --mmproj mmproj-Qwen3VL-2B-Instruct-F16.gguf \\"
	@echo "==       --video $(DEMO_VIDEO) -p 'Describe this video.'"
	./$(BUILD)/reel -m $(DEMO_MODEL) --mmproj $(DEMO_MMPROJ) --video $(DEMO_VIDEO) \
	    -p "Describe this video." -n 32 --verbose

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# The suite again under AddressSanitizer + UndefinedBehaviorSanitizer (CI runs this too).
sanitize: deps
	cmake -S . -B $(BUILD)-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DREEL_SANITIZE=ON
	cmake --build $(BUILD)-asan -j $(JOBS)
	cd $(BUILD)-asan && ctest --output-on-failure -j $(JOBS)

clean:
	rm -rf $(BUILD) $(BUILD)-asan $(BUILD)-fuzz
