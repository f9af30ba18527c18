#!/usr/bin/env bash
#! Runs every Bianmin test: the whole workspace under a headless X server, then the Android type-check.
# Installs missing system packages and the Android Rust target first. Usage: bash tools/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/deps.sh

# A whole-suite run gains nothing from incremental caches (1.6 GB on a fresh clone);
# disk is the scarce thing on CI machines. Free space is logged before and after.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
df -h . >&2 || true

# Gates first: they are quick and say exactly what is wrong. Warnings are errors.
echo "== cargo fmt --check" >&2
cargo fmt --all --check
echo "== cargo clippy" >&2
cargo clippy --workspace --all-targets --features bianmin/e2e -- -D warnings
echo "== cargo doc" >&2
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet

# Real services for the town's store tests: a throwaway PostgreSQL cluster and an S3-compatible
# server (tools/services.sh installs Debian's postgresql and builds s3s-fs if needed, starts the
# cluster as an unprivileged user, exports where both are, stops the cluster on exit). The tests
# fail rather than skip when either is missing (BIANMIN_REQUIRE_SERVICES=1).
. tools/services.sh

# The end-to-end tests open the real webview window and headless Chromium; xvfb-run gives
# them a display of their own even where one exists, so a developer's desktop is left alone.
# The `e2e` feature mounts the test driver in the app (never in a release build).
echo "== cargo test (workspace)" >&2
xvfb-run -a -s "-screen 0 1600x1000x24" cargo test --workspace --features bianmin/e2e

# Phones run the portable loops (NEON by the compiler), never the x86 SIMD builds the tests above
# exercise: the scan crate's unit tests (each vectorised loop against its plain reference), its
# error and held-out tests (SCAN_HELD_OUT_N photos of each held-out range instead of 200:
# emulation is slow) and the engine crate's tests run again as aarch64 Linux binaries under
# qemu-user. Measured 2026-12-01 on the shared 2-core VM at load 1.5-2: held-out 86 s, errors 44 s,
# engine 9 s; building the engine's dependencies for aarch64 took 4.7 CPU-minutes (scan crate's
# README). The corpus test (188 s under emulation) is left to the x86 run above: it checks the same
# loops as held-out, on photos the detector was tuned on, and would put this step over its budget.
echo "== cargo test --target aarch64-unknown-linux-gnu under qemu-user (scan and engine)" >&2
if rustup target list --installed 2>/dev/null | grep -q '^aarch64-unknown-linux-gnu$' \
   || rustup target add aarch64-unknown-linux-gnu >&2; then
  export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
    CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu" \
    CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc \
    AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
  SCAN_HELD_OUT_N=20 cargo test --target aarch64-unknown-linux-gnu -p bianmin-scan --lib \
    --test held_out --test errors -- --nocapture
  cargo test --target aarch64-unknown-linux-gnu -p bianmin-engine
else
  echo "error: the aarch64-unknown-linux-gnu target could not be installed" >&2
  exit 1
fi

# Android: no SDK or NDK can be had here, so the Android build is type-checked only.
# ring's C code is compiled by Debian's clang against the aarch64 glibc headers (enough for a check).
echo "== cargo check --target aarch64-linux-android" >&2
if rustup target list --installed 2>/dev/null | grep -q '^aarch64-linux-android$' \
   || rustup target add aarch64-linux-android >&2; then
  export CC_aarch64_linux_android=clang
  export AR_aarch64_linux_android=llvm-ar
  export CFLAGS_aarch64_linux_android="--target=aarch64-linux-android21 -D_GNU_SOURCE -isystem /usr/aarch64-linux-gnu/include"
  cargo check --target aarch64-linux-android -p bianmin-engine -p bianmin
else
  echo "warning: the aarch64-linux-android target could not be installed; skipping the Android type-check" >&2
fi

df -h . >&2 || true
du -sh target 2>/dev/null >&2 || true
