#!/usr/bin/env bash
#! Starts the real services the tests run against: a throwaway PostgreSQL cluster, and provides
#! a real S3-compatible server (s3s-fs from crates.io) that the object-store tests start.
# Source it (`. tools/services.sh`) from a script with `set -euo pipefail`: it exports
# BIANMIN_TEST_DATABASE_URL, BIANMIN_TEST_S3_BIN and BIANMIN_REQUIRE_SERVICES=1 and stops the
# cluster on exit. Installs Debian's `postgresql` if no initdb is found (as root, or with sudo)
# and builds s3s-fs into target/tools once (about 3 minutes on two cores).

bianmin_services_dir="$(mktemp -d -t bianmin-services.XXXXXX)"

bianmin_pg_bin() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then echo "$d"; return 0; fi
  done
  return 1
}

if ! bianmin_pg_bin >/dev/null; then
  echo "== installing postgresql (apt)" >&2
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends postgresql >&2
fi
bianmin_pg="$(bianmin_pg_bin)" || { echo "error: PostgreSQL's initdb is missing after installing it" >&2; exit 1; }

# PostgreSQL refuses to run as root (CI is root): the cluster belongs to an unprivileged user.
if [ "$(id -u)" -eq 0 ]; then
  bianmin_pg_user=postgres
  id -u "$bianmin_pg_user" >/dev/null 2>&1 || useradd --system --no-create-home "$bianmin_pg_user"
  chown "$bianmin_pg_user" "$bianmin_services_dir"
  bianmin_as_pg() { runuser -u "$bianmin_pg_user" -- "$@"; }
else
  bianmin_as_pg() { "$@"; }
fi

# Unix socket only (no TCP port to collide with anything); fsync off because the cluster is
# deleted afterwards and no test judges PostgreSQL's own durability.
bianmin_as_pg "$bianmin_pg/initdb" -D "$bianmin_services_dir/pg" -U bianmin -A trust \
  --no-sync -E UTF8 --locale=C.UTF-8 >"$bianmin_services_dir/initdb.log" 2>&1 \
  || { cat "$bianmin_services_dir/initdb.log" >&2; exit 1; }
bianmin_as_pg "$bianmin_pg/pg_ctl" -D "$bianmin_services_dir/pg" -w -t 60 \
  -l "$bianmin_services_dir/pg.log" \
  -o "-c listen_addresses='' -k $bianmin_services_dir -c max_connections=400 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
  start >&2 || { cat "$bianmin_services_dir/pg.log" >&2; exit 1; }

bianmin_services_stop() {
  bianmin_as_pg "$bianmin_pg/pg_ctl" -D "$bianmin_services_dir/pg" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$bianmin_services_dir"
}
trap bianmin_services_stop EXIT

# s3s-fs: the s3s project's S3 server over a directory (a real HTTP S3 implementation with
# SigV4 and multipart uploads, not an in-process mock). Pinned: 0.14 is the last release that
# builds with the toolchain here.
bianmin_tools="$PWD/target/tools"
if ! [ -x "$bianmin_tools/bin/s3s-fs" ]; then
  echo "== installing s3s-fs (cargo install)" >&2
  cargo install s3s-fs --version 0.14.1 --features binary --locked --root "$bianmin_tools" >&2
fi
export BIANMIN_TEST_S3_BIN="$bianmin_tools/bin/s3s-fs"

export BIANMIN_TEST_DATABASE_URL="postgresql:///postgres?user=bianmin&host=$bianmin_services_dir"
# The tests fail, rather than skip, when a service they need is missing.
export BIANMIN_REQUIRE_SERVICES=1
echo "== PostgreSQL $("$bianmin_pg/pg_ctl" --version | awk '{print $3}') at $bianmin_services_dir" >&2
