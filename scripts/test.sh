#!/usr/bin/env bash
# Builds everything with tests and runs the whole suite.
#
# In CI (CI=true), or with LUMEN_SANITIZE=1, it then also runs the suite
# under ASan+UBSan, a shared-library build (with the shared libLLVM) used
# from its installed package, the concurrency tests under TSan (separate
# build directories), and a short smoke run of every libFuzzer harness.
#
# Each stage ends with what it ran, passed, failed and skipped (and why);
# the run ends with the totals over all stages.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
lumen_install_deps
lumen_build build -DLUMEN_BUILD_TESTS=ON
lumen_install_test_clients build
export LUMEN_SUMMARY="$PWD/build/test-summary.tsv"
rm -f "$LUMEN_SUMMARY"

# ctest in build dir $1 with the remaining arguments; its summary as stage $stage.
run_ctest() {
  local dir="$1"; shift
  local rc=0
  ctest --test-dir "$dir" --output-on-failure -j "$(nproc)" --output-junit "$PWD/$dir/ctest-junit.xml" "$@" || rc=$?
  python3 scripts/test_summary.py "$stage" "$dir/ctest-junit.xml"
  return $rc
}

stage=release run_ctest build
if [ "${CI:-}" != true ] && [ "${LUMEN_SANITIZE:-0}" != 1 ]; then
  python3 scripts/test_summary.py --total
  exit 0
fi
echo "== ASan + UBSan: the unit tests =="
lumen_build build-asan -DLUMEN_BUILD_TESTS=ON -DLUMEN_BUILD_BENCH=OFF -DLUMEN_SANITIZE=address,undefined
lumen_install_tokenizer_oracle build-asan
# The installed-package test rebuilds the examples without sanitizers; the
# 0.5B comparisons (against the reference and llama.cpp) run in the release
# stage and take minutes each under ASan, as does writing the 1.5B file.
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  stage=asan run_ctest build-asan \
  -E 'InstalledPackage|ServeClients|BatchInvariantOnThe05bModel|JitVsReferenceTest.Synthetic05b|Qwen05bFixture|make_qwen05b|LumenJitTest.RunSynthetic05b|ReadmeClaimsTest.SynthWritesEveryPreset|NoThinkOpensTheReplyWithAnEmptyThinkBlock'

echo "== Shared libraries (and so the shared libLLVM): install, build the examples against it =="
cmake -S . -B build-shared -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON -DLUMEN_BUILD_BENCH=OFF >/dev/null
cmake --build build-shared -j "$(nproc)" --target lumen-jit
stage=shared run_ctest build-shared -R InstalledPackage

echo "== TSan: thread pool, kernel cache, concurrent sessions, the server's scheduler =="
cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Release -DLUMEN_BUILD_BENCH=OFF -DLUMEN_SANITIZE=thread >/dev/null
cmake --build build-tsan -j "$(nproc)" --target RuntimeTests ModelTests ServerTests
TSAN_OPTIONS=halt_on_error=1 build-tsan/unittests/Runtime/RuntimeTests --gtest_output=xml:build-tsan/runtime.xml \
  --gtest_filter='ThreadPoolTest.*:ThreadPoolWaitTest.*:KernelCacheTest.*:MatmulKernelTest.RowRangesAndThreadsAgree'
TSAN_OPTIONS=halt_on_error=1 build-tsan/unittests/Model/ModelTests --gtest_output=xml:build-tsan/model.xml \
  --gtest_filter='ConcurrencyTest.*'
TSAN_OPTIONS=halt_on_error=1 build-tsan/unittests/Server/ServerTests --gtest_output=xml:build-tsan/server.xml \
  --gtest_filter='SchedulerTest.*'
python3 scripts/test_summary.py tsan build-tsan/runtime.xml build-tsan/model.xml build-tsan/server.xml

echo "== libFuzzer smoke run =="
lumen_install_fuzz_deps
bash fuzz/run.sh "${LUMEN_FUZZ_SECONDS:-20}" build-fuzz
echo "sanitizer and fuzz stages: all passed"
python3 scripts/test_summary.py --total
