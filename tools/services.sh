#!/usr/bin/env bash
#! Starts the real services the tests run against: a throwaway PostgreSQL cluster (unix socket, and
#! TLS on loopback with a throwaway CA), and provides
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

# TLS on loopback, for the sslmode=require tests: a throwaway CA, a server certificate for
# 127.0.0.1 signed by it, and a second CA that must not be trusted for this server.
bianmin_tls="$bianmin_services_dir/tls"
mkdir -p "$bianmin_tls"
(
  cd "$bianmin_tls"
  for ca in ca other-ca; do
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
      -subj "/CN=bianmin test $ca" -keyout "$ca.key" -out "$ca.pem" 2>/dev/null
  done
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -subj "/CN=127.0.0.1" -keyout server.key -out server.csr 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >server.ext
  openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
    -extfile server.ext -out server.pem 2>/dev/null
  chmod 600 server.key
)
[ "$(id -u)" -eq 0 ] && chown -R "$bianmin_pg_user" "$bianmin_tls"
bianmin_pg_port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"

bianmin_as_pg "$bianmin_pg/pg_ctl" -D "$bianmin_services_dir/pg" -w -t 60 \
  -l "$bianmin_services_dir/pg.log" \
  -o "-c listen_addresses=127.0.0.1 -c port=$bianmin_pg_port -k $bianmin_services_dir -c ssl=on -c ssl_cert_file=$bianmin_tls/server.pem -c ssl_key_file=$bianmin_tls/server.key -c max_connections=400 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
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

export BIANMIN_TEST_DATABASE_URL="postgresql:///postgres?user=bianmin&host=$bianmin_services_dir&port=$bianmin_pg_port"
# The same server over TCP with TLS, and the CA that signed its certificate (and one that did not).
export BIANMIN_TEST_DATABASE_TLS_URL="postgresql://bianmin@127.0.0.1:$bianmin_pg_port/postgres?sslmode=require"
export BIANMIN_TEST_DATABASE_CA="$bianmin_tls/ca.pem"
export BIANMIN_TEST_DATABASE_OTHER_CA="$bianmin_tls/other-ca.pem"
# The tests fail, rather than skip, when a service they need is missing.
export BIANMIN_REQUIRE_SERVICES=1
echo "== PostgreSQL $("$bianmin_pg/pg_ctl" --version | awk '{print $3}') at $bianmin_services_dir" >&2
