#!/usr/bin/env bash
# Install the Debian packages the firmware build, the emulator and the fuzzers need, when missing.
# Idempotent and quick when everything is there. Needs root (or sudo) only when something is missing.
set -euo pipefail

need=()
command -v arm-none-eabi-gcc >/dev/null 2>&1 || need+=(gcc-arm-none-eabi)
[ -f /usr/lib/arm-none-eabi/include/stdlib.h ] || need+=(libnewlib-arm-none-eabi)
command -v qemu-system-arm >/dev/null 2>&1 || need+=(qemu-system-arm)
# C++ runtime for arm-none-eabi: the XIAO nRF52840 board image and the TFLM/CMSIS-NN benchmark (../shared/vendor).
[ -d /usr/lib/arm-none-eabi/include/c++ ] || need+=(libstdc++-arm-none-eabi-newlib)
# Headless browser for the report's rendering test.
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v clang >/dev/null 2>&1 || need+=(clang)
# libFuzzer and the sanitizer runtimes for clang (fuzzing the C frame parser).
ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-*.a >/dev/null 2>&1 || need+=(libclang-rt-dev)
command -v make >/dev/null 2>&1 || need+=(make)

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi

echo "installing Debian packages: ${need[*]}"
if [ "$(id -u)" -eq 0 ]; then
  SUDO=""
elif command -v sudo >/dev/null 2>&1; then
  SUDO="sudo"
else
  echo "error: missing ${need[*]} and not root; run: apt-get install -y ${need[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
