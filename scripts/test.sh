#!/usr/bin/env bash
# Builds everything with tests and runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
lumen_install_deps
lumen_build build -DLUMEN_BUILD_TESTS=ON
ctest --test-dir build --output-on-failure -j "$(nproc)"
