#!/usr/bin/env bash
#! Creates the gitignored Python venv (/work/main/.bench-venv) holding OpenCV for the benchmark's reference pipeline.
set -euo pipefail
root="$(cd "$(dirname "$0")/../../.." && pwd)"
python3 -m venv "$root/.bench-venv"
"$root/.bench-venv/bin/pip" install -q opencv-python-headless numpy
