#!/usr/bin/env bash
# Builds Shoal and runs every test (unit, parity with transformers' fixtures, and integration
# tests that start real shoal-worker processes on loopback; on x86-64 also the NEON kernels,
# cross-built and run under qemu). Installs missing system packages.
set -euo pipefail
cd "$(dirname "$0")/.."
source Scripts/install-deps.sh
# The NEON kernels never run on an x86-64 host: check them against the portable ones under qemu.
[ "$(uname -m)" != x86_64 ] || Scripts/check-neon.sh
# Executables first: integration tests start the built shoal-worker / shoal-coordinator.
swift build --build-tests "$@"
swift test --skip-build "$@" 2>&1 | tee .build/test-output.log
