# visage: the two commands a newcomer needs are `make quickstart` and `make test`.
CARGO  ?= cargo
VISAGE := target/debug/visage
# The shared WIDER FACE ground truth and fixtures live beside the repository; tests that need
# them skip (printing why) when VISAGE_SHARED_DIR does not point at them.
SHARED ?= $(abspath ../shared)

.PHONY: build quickstart test lint check-gpu ci

build:
	$(CARGO) build -p visage

# Generate the synthetic set if missing, train the tiny detector on the CPU, evaluate it.
quickstart: build
	$(VISAGE) train --config configs/quickstart.toml --overwrite
	$(VISAGE) eval --split val --weights runs/quickstart/best

test:
	VISAGE_SHARED_DIR=$${VISAGE_SHARED_DIR:-$(SHARED)} $(CARGO) test --workspace

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# The GPU backends must keep compiling even on machines without a GPU.
check-gpu:
	$(CARGO) check -p visage --features wgpu,cuda

ci: lint test check-gpu
