#!/usr/bin/env bash
#! Creates the gitignored Python venv (/work/main/.bench-venv) holding OpenCV for the benchmark's reference pipeline.
set -euo pipefail
root="$(cd "$(dirname "$0")/../../.." && pwd)"
python3 -m venv "$root/.bench-venv"
# Pinned: the speed goal is a ratio to OpenCV's time, and OpenCV's own speed moves between
# releases (5.0's warpPerspective takes half the time of 4.14's), so an unpinned install would
# change the reference under the figures. The newest release on PyPI when pinned (2026-11-30);
# change both together, and re-measure the README's tables when you do.
"$root/.bench-venv/bin/pip" install -q opencv-python-headless==5.0.0.93 numpy==2.4.6
