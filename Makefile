# The two set-up commands of the README: `make demo` and `make test`. Both install missing
# Debian packages, configure and build in Release, then run the demo or the whole suite.
BUILD ?= build
JOBS ?= $(shell nproc)
DEMO_MODEL ?= $(BUILD)/fixtures/models/tiny-a-q8_0.gguf

.PHONY: all deps build demo test sanitize fuzz bench clean

all: build

deps:
	@scripts/install-deps.sh

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release
	cmake --build $(BUILD) -j $(JOBS)

demo: build
	@echo "== Reel demo: a tiny bundled Qwen3-VL-shaped model with RANDOM weights, so its words"
	@echo "== are nonsense; the pipeline (GGUF, tokenizer, decoder, sampler) is the real one."
	@echo "== With the official files: ./$(BUILD)/reel -m Qwen3VL-2B-Instruct-Q4_K_M.gguf -p '...'"
	./$(BUILD)/reel -m $(DEMO_MODEL) -p "Describe a sunny day at the beach." -n 32 --verbose

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# The suite again under AddressSanitizer + UndefinedBehaviorSanitizer (CI runs this too).
sanitize: deps
	cmake -S . -B $(BUILD)-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DREEL_SANITIZE=ON
	cmake --build $(BUILD)-asan -j $(JOBS)
	cd $(BUILD)-asan && ctest --output-on-failure -j $(JOBS)

clean:
	rm -rf $(BUILD) $(BUILD)-asan $(BUILD)-fuzz
