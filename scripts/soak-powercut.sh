#!/usr/bin/env bash
# Long simulated power-cut run: builds and verifies IMAGES crash images
# (default 100,000) from recorded seeded workloads. See
# engine/tests/powercut.rs for what each image must satisfy.
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGES=${1:-100000}
BLOCKD_POWERCUT_IMAGES=$IMAGES cargo test -p blockd-engine --test powercut -- --nocapture
