#!/usr/bin/env bash
# Installs the Debian packages Lumen builds with, if any are missing.
# Sourced by quickstart.sh and test.sh; needs root (or sudo) only to install.
lumen_install_deps() {
  local pkgs=(g++ cmake make llvm-19-dev libabsl-dev libgtest-dev libgmock-dev lld-19 libutf8proc-dev nlohmann-json3-dev python3-numpy)
  local missing=()
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "lumen: installing ${missing[*]}" >&2
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "lumen: run as root to install: ${missing[*]}" >&2; return 1; }
    sudo=sudo
  fi
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
}

# Configures and builds into $1 (default: build) with the given extra CMake args.
lumen_build() {
  local dir="${1:-build}"; shift || true
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
  cmake --build "$dir" -j "$(nproc)"
}
