#!/usr/bin/env bash
#! Runs the scan benchmark (Rust pipeline beside the OpenCV reference), creating the venv if missing.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
[ -x "$root/.bench-venv/bin/python" ] || bash "$here/setup_venv.sh"
cd "$root"
command -v tesseract >/dev/null || echo "tesseract missing: bash tools/deps.sh installs it (OCR scores skipped)" >&2
exec cargo bench -p bianmin-scan --bench pipeline
