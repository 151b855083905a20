#!/usr/bin/env bash
# Builds Shoal and runs every test (unit, parity with transformers' fixtures, and integration
# tests that start real shoal-worker processes on loopback). Installs missing system packages.
set -euo pipefail
cd "$(dirname "$0")/.."
source Scripts/install-deps.sh
# Executables first: integration tests start the built shoal-worker / shoal-coordinator.
swift build --build-tests "$@"
swift test --skip-build "$@" 2>&1 | tee .build/test-output.log
