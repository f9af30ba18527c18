#!/usr/bin/env bash
#! Installs the Debian packages and Rust targets Bianmin needs, skipping what is already there.
# Sourced by tools/run.sh and tools/test.sh; safe to run again. Needs root or sudo for apt.
set -euo pipefail

BIANMIN_APT_PACKAGES=(
  # Dioxus desktop (wry/tao webview) and its devtools websocket (OpenSSL).
  libwebkit2gtk-4.1-dev libgtk-3-dev libxdo-dev libssl-dev pkg-config
  # A headless X server for the app's end-to-end tests and for running without a display.
  xvfb xauth
  # Chinese glyphs for the UI and screenshots, and the font the town embeds (subset) in printed notices.
  fonts-noto-cjk
  # DejaVu Sans Mono draws the digits of the synthetic ID-card photos (crates/scan idsynth tests).
  fonts-dejavu-core
  # Resident pages are tested in real headless Chromium.
  chromium chromium-driver
  # Screenshots of the real window.
  imagemagick
  # axe-core (below) runs inside the app's webview in the e2e; npm installs it.
  nodejs
  # tools/run.sh waits for the town centre's health check.
  curl
  # Power-loss tests mount a FUSE file system (as root through mount(2); fusermount3 otherwise).
  fuse3
  # Type-checking the Android build: C code in build scripts (ring) compiled by clang for aarch64.
  clang llvm libc6-dev-arm64-cross
  # The scan crate's unit tests also run as aarch64 Linux binaries (the phones' portable loops):
  # linked by the cross gcc, run by qemu-user.
  gcc-aarch64-linux-gnu qemu-user
  # The TLS-to-PostgreSQL tests make a throwaway CA and server certificate (tools/services.sh).
  openssl
  # The catalog spreadsheet test edits an exported workbook with Python's openpyxl (below).
  python3 python3-pip
  # The printed-notice tests read the PDFs' text (pdftotext) and render a page (pdftoppm).
  poppler-utils
  # The scan benchmark's legibility score (OCR of the scans), not needed by the tests.
  tesseract-ocr tesseract-ocr-chi-sim
)

missing=()
for p in "${BIANMIN_APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# crates/town/tests/catalog_sheet.rs edits an exported catalog with openpyxl, a real spreadsheet
# library, through whichever python3 comes first on PATH (Debian's refuses plain pip installs).
if ! python3 -c 'import openpyxl' 2>/dev/null; then
  echo "deps: installing openpyxl (pip)" >&2
  python3 -m pip install --quiet openpyxl 2>/dev/null \
    || python3 -m pip install --quiet --break-system-packages openpyxl
fi

# The app's e2e runs axe-core's accessibility rules inside the real webview (src/e2e.rs): one
# pinned version in a project-local directory, nothing installed globally. Debian's npm is a
# separate package; a Node.js that brings its own npm needs none.
BIANMIN_AXE_VERSION=4.14.1
BIANMIN_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if ! grep -qs "\"version\": \"${BIANMIN_AXE_VERSION}\"" \
    "$BIANMIN_ROOT/.deps/npm/node_modules/axe-core/package.json"; then
  if ! command -v npm >/dev/null; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends npm >/dev/null
  fi
  echo "deps: installing axe-core ${BIANMIN_AXE_VERSION} (npm) into .deps/npm" >&2
  npm install --silent --no-audit --no-fund --no-save --prefix "$BIANMIN_ROOT/.deps/npm" \
    "axe-core@${BIANMIN_AXE_VERSION}" >&2
fi

# The format and lint gates of tools/test.sh.
for component in rustfmt clippy; do
  rustup component list --installed 2>/dev/null | grep -q "^${component}-" \
    || rustup component add "$component" >&2
done
