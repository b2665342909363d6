#!/usr/bin/env bash
# A throwaway PostgreSQL server for the test suite.
#
#   scripts/postgres-test-server.sh start [--watch-pid PID]
#       initdb's a new cluster in a new temporary directory and starts it, listening only on a unix socket in
#       that directory (no TCP port, so parallel runs never collide). Prints one line on stdout: the Npgsql
#       connection string (superuser "postgres", trust authentication, database "postgres").
#       With --watch-pid, the server is stopped and its directory removed once process PID has exited, so a
#       test run that is killed leaves nothing running behind.
#   scripts/postgres-test-server.sh stop DIR
#       stops the server whose directory (the connection string's Host) is DIR and deletes DIR.
#
# Uses $POSTGRES_BINDIR when set, else the Debian packages' binaries (/usr/lib/postgresql/<version>/bin, installed by scripts/setup.sh --test),
# or those on PATH. PostgreSQL refuses to run as root: as root, the cluster belongs to the "postgres" user and
# runs under runuser. Exits non-zero with a message on stderr when the server cannot be started.
set -euo pipefail

die() { echo "postgres-test-server: $*" >&2; exit 1; }

find_bindir() {
  local dir
  if [[ -n ${POSTGRES_BINDIR:-} ]]; then
    [[ -x $POSTGRES_BINDIR/initdb && -x $POSTGRES_BINDIR/pg_ctl ]] || die "POSTGRES_BINDIR=$POSTGRES_BINDIR has no initdb and pg_ctl"
    echo "$POSTGRES_BINDIR"; return
  fi
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [[ -x $dir/initdb && -x $dir/pg_ctl ]] && { echo "$dir"; return; }
  done
  if command -v pg_config >/dev/null && [[ -x "$(pg_config --bindir)/initdb" ]]; then pg_config --bindir; return; fi
  if command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then dirname "$(command -v initdb)"; return; fi
  die "PostgreSQL server binaries (initdb, pg_ctl) not found; install them with: scripts/setup.sh --test (Debian package postgresql)"
}

# Runs a command as the cluster's owner: the postgres user when we are root, else ourselves.
as_owner() {
  if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

stop_server() {
  local dir=$1 bindir
  [[ -d $dir && -f $dir/chatservices-postgres-test ]] || die "$dir is not a test server directory"
  bindir=$(cat "$dir/bindir")
  if [[ -f $dir/data/postmaster.pid ]]; then
    as_owner "$bindir/pg_ctl" -D "$dir/data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
}

start_server() {
  local watch_pid=""
  while (($#)); do
    case $1 in
      --watch-pid) watch_pid=${2:?--watch-pid needs a process id}; shift 2 ;;
      *) die "unknown option $1" ;;
    esac
  done

  local bindir dir port=5432
  bindir=$(find_bindir)
  if [[ $(id -u) -eq 0 ]]; then
    id postgres >/dev/null 2>&1 || die "running as root needs the 'postgres' user (created by the postgresql package)"
  fi
  # Short path: a unix socket path must stay under ~100 bytes.
  dir=$(mktemp -d /tmp/chatservices-pg.XXXXXX)
  touch "$dir/chatservices-postgres-test"
  echo "$bindir" > "$dir/bindir"
  [[ $(id -u) -eq 0 ]] && chown -R postgres: "$dir"

  if ! as_owner "$bindir/initdb" -D "$dir/data" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 \
      >"$dir/initdb.log" 2>&1; then
    cat "$dir/initdb.log" >&2; rm -rf "$dir"; die "initdb failed"
  fi
  # Tuned for a disposable test cluster: durability off (fsync), small memory, no TCP.
  cat >> "$dir/data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$dir'
port = $port
max_connections = 200
shared_buffers = 32MB
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
  if ! as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null 2>&1; then
    cat "$dir/server.log" >&2 2>/dev/null || true; rm -rf "$dir"; die "the server did not start"
  fi

  if [[ -n $watch_pid ]]; then
    # Detached, with every stream closed, so that whoever reads our stdout sees it end when we exit.
    setsid bash -c 'while kill -0 "$1" 2>/dev/null; do sleep 2; done; exec "$2" stop "$3"' \
      watchdog "$watch_pid" "$(realpath "$0")" "$dir" </dev/null >/dev/null 2>&1 &
  fi
  echo "Host=$dir;Port=$port;Username=postgres;Database=postgres;Pooling=true"
}

case ${1:-} in
  start) shift; start_server "$@" ;;
  stop) [[ -n ${2:-} ]] || die "usage: $0 stop DIR"; stop_server "$2" ;;
  *) echo "usage: $0 start [--watch-pid PID] | stop DIR" >&2; exit 2 ;;
esac
