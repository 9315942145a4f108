# visage: the two commands a newcomer needs are `make quickstart` and `make test`.
CARGO  ?= cargo
# Cargo's output folder: `target/`, or CARGO_TARGET_DIR when it is set.
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)
VISAGE := $(TARGET_DIR)/debug/visage
# The shared WIDER FACE ground truth and fixtures live beside the repository; tests that need
# them skip (printing why) when VISAGE_SHARED_DIR does not point at them.
SHARED ?= $(abspath ../shared)

.PHONY: build build-release build-quickstart quickstart test test-wgpu lint check-gpu ci

build:
	$(CARGO) build -p visage

build-release:
	$(CARGO) build --release -p visage

# The quickstart's build is the dev build `make test` makes: the same profile (dependencies at
# opt-level 3, see Cargo.toml) and the same features — building the examples too turns on the
# dev-dependencies' features, as the tests do — so the two commands compile Burn once.
build-quickstart:
	$(CARGO) build --workspace --bins --examples $(TEST_FEATURES)

# Generate the synthetic set if missing, train the tiny detector on the CPU, evaluate it.
quickstart: build-quickstart
	$(VISAGE) train --config configs/quickstart.toml --overwrite
	$(VISAGE) eval --split val --weights runs/quickstart/best

# The tests include Burn's wgpu backend: every layer, the DF²S² training step and detection
# on it against Flex (on Mesa's software Vulkan where there is no GPU: apt-get install
# mesa-vulkan-drivers libvulkan1); skipped, saying why, without a Vulkan driver.
TEST_FEATURES := --features visage/wgpu

test:
	VISAGE_SHARED_DIR=$${VISAGE_SHARED_DIR:-$(SHARED)} $(CARGO) test --workspace $(TEST_FEATURES)

test-wgpu:
	VISAGE_SHARED_DIR=$${VISAGE_SHARED_DIR:-$(SHARED)} $(CARGO) test -p visage --features wgpu --test wgpu_ops --test wgpu_detect --test wgpu_step --test wgpu_burn_bugs

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets $(TEST_FEATURES) -- -D warnings

# The GPU backends must keep compiling even on machines without a GPU.
check-gpu:
	$(CARGO) check -p visage --features wgpu,cuda

ci: lint test check-gpu
