#!/usr/bin/env bash
#! Runs the whole system locally: the town centre on its embedded store, and the app enrolled with it.
# Usage: bash tools/run.sh   (data under target/bianmin-run, or $BIANMIN_HOME; port $BIANMIN_PORT, default 8714)
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/deps.sh

home="${BIANMIN_HOME:-$PWD/target/bianmin-run}"
port="${BIANMIN_PORT:-8714}"
server="http://127.0.0.1:${port}"
# The pilot village 古韩镇南关村 (see `bianmin-town villages --json`).
village="${BIANMIN_VILLAGE:-140423100201}"
mkdir -p "$home"

cargo build -p bianmin-town -p bianmin
town=target/debug/bianmin-town
app=target/debug/bianmin

"$town" --data "$home/town" serve --listen "127.0.0.1:${port}" &
town_pid=$!
trap 'kill "$town_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  curl -fsS "$server/healthz" >/dev/null 2>&1 && break
  kill -0 "$town_pid" 2>/dev/null || { echo "town centre failed to start" >&2; exit 1; }
  sleep 0.1
done
echo "town centre: $server (data: $home/town)" >&2

# A fresh one-time code for the pilot village on every start: the app's enrolment screen comes
# prefilled with it on first run; an already enrolled app ignores it and the code expires unused.
export BIANMIN_DATA="$home/app" BIANMIN_SERVER="$server"
BIANMIN_ENROLL_CODE="$("$town" --data "$home/town" enroll --village "$village" | head -n 1)"
export BIANMIN_ENROLL_CODE
echo "enrolment code for the app: $BIANMIN_ENROLL_CODE" >&2

if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
  "$app"
else
  echo "no display: running the app under xvfb-run (headless)" >&2
  xvfb-run -a -s "-screen 0 1280x900x24" "$app"
fi
