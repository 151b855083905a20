#!/usr/bin/env bash
# Builds the C kernels for arm64 with a cross compiler and runs Tests/NEON/neon_vs_portable.c
# under qemu-aarch64: the NEON path checked against the portable one on an x86-64 machine.
# Installs gcc-aarch64-linux-gnu and qemu-user when missing (Debian).
#
#   Scripts/check-neon.sh
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v aarch64-linux-gnu-gcc > /dev/null || ! command -v qemu-aarch64 > /dev/null; then
    echo "check-neon: installing gcc-aarch64-linux-gnu qemu-user" >&2
    sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user >/dev/null
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
aarch64-linux-gnu-gcc -O2 -std=gnu11 -pthread -ISources/CKernels/include -ISources/CKernels \
    Sources/CKernels/*.c Tests/NEON/neon_vs_portable.c -lm -o "$out/neon_vs_portable"
qemu-aarch64 -L /usr/aarch64-linux-gnu "$out/neon_vs_portable"
