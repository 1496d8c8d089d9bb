#!/usr/bin/env bash
# Start/stop PostgreSQL and an MLflow tracking server on loopback, for CI and for a lab.
#
#   .ci/tracking-server.sh install   apt-get install postgresql when its binaries are missing (root)
#   .ci/tracking-server.sh start     initdb (once), start PostgreSQL, create the database, start
#                                    `mlflow server` on it; idempotent (a running server is reused)
#   .ci/tracking-server.sh stop      stop both (data stays in $MEC_SERVER_DIR)
#   .ci/tracking-server.sh status    print the tracking URI when the server answers, exit 1 otherwise
#   .ci/tracking-server.sh uri       print the tracking URI
#
# Environment (defaults in brackets):
#   MEC_SERVER_DIR   state: pgdata/, artifacts/, logs, pid files   [$PWD/.ci-server]
#   MEC_PG_PORT      PostgreSQL port on 127.0.0.1                  [5433]
#   MEC_MLFLOW_HOST  MLflow server address                         [127.0.0.1]
#   MEC_MLFLOW_PORT  MLflow server port                            [5000]
#   MEC_BACKEND      postgres | sqlite (sqlite: no PostgreSQL)     [postgres]
#   MEC_MLFLOW_BIN   the mlflow executable                         [.venv/bin/mlflow, else mlflow]
#   MEC_MLFLOW_WORKERS  server worker processes                     [4]
# PostgreSQL refuses to run as root: as root, its processes run as the `postgres` user.
set -euo pipefail

DIR="$(realpath -m "${MEC_SERVER_DIR:-$PWD/.ci-server}")"
PG_PORT="${MEC_PG_PORT:-5433}"
HOST="${MEC_MLFLOW_HOST:-127.0.0.1}"
PORT="${MEC_MLFLOW_PORT:-5000}"
BACKEND="${MEC_BACKEND:-postgres}"
WORKERS="${MEC_MLFLOW_WORKERS:-4}"
HERE="$(cd "$(dirname "$0")/.." && pwd)"
if [ -n "${MEC_MLFLOW_BIN:-}" ]; then MLFLOW="$MEC_MLFLOW_BIN"
elif [ -x "$HERE/.venv/bin/mlflow" ]; then MLFLOW="$HERE/.venv/bin/mlflow"
else MLFLOW="mlflow"; fi
if [ -x "$HERE/.venv/bin/python" ]; then PY="$HERE/.venv/bin/python"; else PY="python3"; fi
export MLFLOW_DISABLE_TELEMETRY=true
URI="http://$HOST:$PORT"
DB_URI="postgresql+psycopg2://mlflow@127.0.0.1:$PG_PORT/mlflow"

die() { echo "tracking-server: $*" >&2; exit 1; }

pg_bin() {  # the directory holding initdb/pg_ctl, or empty
  if command -v pg_ctl >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1; then
    dirname "$(readlink -f "$(command -v pg_ctl)")"; return
  fi
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$d/pg_ctl" ] && { echo "$d"; return; }
  done
}

as_pg() {  # run a command as the PostgreSQL owner (postgres when we are root)
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

health() {  # no curl on a fresh Debian box: ask with Python
  "$PY" -c "import sys, urllib.request as u; u.urlopen(sys.argv[1], timeout=2).read(16)" "$URI/health" >/dev/null 2>&1
}

install_pg() {
  if [ -n "$(pg_bin)" ]; then echo "tracking-server: PostgreSQL found in $(pg_bin)"; return; fi
  [ "$(id -u)" = 0 ] || die "PostgreSQL is not installed; run as root or: sudo apt-get install -y postgresql"
  command -v apt-get >/dev/null || die "PostgreSQL is not installed and apt-get is absent; install postgresql"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends postgresql >/dev/null
  [ -n "$(pg_bin)" ] || die "apt-get install postgresql left no pg_ctl in /usr/lib/postgresql/*/bin"
  # the Debian package starts its own cluster on 5432; ours is separate, leave it alone
  echo "tracking-server: installed PostgreSQL in $(pg_bin)"
}

start_pg() {
  local bin; bin="$(pg_bin)"
  [ -n "$bin" ] || die "PostgreSQL binaries not found; run '$0 install' (Debian: apt-get install -y postgresql) or use MEC_BACKEND=sqlite"
  mkdir -p "$DIR"
  if [ "$(id -u)" = 0 ]; then
    chown postgres "$DIR"
    # the postgres user must be able to reach $DIR
    local p="$DIR"; while [ "$p" != / ]; do p="$(dirname "$p")"; chmod o+x "$p" 2>/dev/null || true; done
  fi
  if [ ! -f "$DIR/pgdata/PG_VERSION" ]; then
    as_pg "$bin/initdb" -D "$DIR/pgdata" -U postgres --auth=trust -E UTF8 --no-locale >"$DIR/initdb.log" 2>&1 \
      || die "initdb failed, see $DIR/initdb.log"
  fi
  if ! as_pg "$bin/pg_ctl" -D "$DIR/pgdata" status >/dev/null 2>&1; then
    as_pg "$bin/pg_ctl" -D "$DIR/pgdata" -l "$DIR/postgres.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -c unix_socket_directories=$DIR -c max_connections=200" start >/dev/null \
      || die "PostgreSQL did not start, see $DIR/postgres.log"
  fi
  local psql="$bin/psql"
  if ! as_pg "$psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -tAc "select 1 from pg_roles where rolname='mlflow'" | grep -q 1; then
    as_pg "$psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -qc "create role mlflow login" >/dev/null
  fi
  if ! as_pg "$psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -tAc "select 1 from pg_database where datname='mlflow'" | grep -q 1; then
    as_pg "$psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -qc "create database mlflow owner mlflow" >/dev/null
  fi
}

stop_pg() {
  local bin; bin="$(pg_bin)"
  [ -n "$bin" ] && [ -f "$DIR/pgdata/PG_VERSION" ] || return 0
  as_pg "$bin/pg_ctl" -D "$DIR/pgdata" -m fast -w stop >/dev/null 2>&1 || true
}

start_mlflow() {
  if health; then echo "tracking-server: $URI already answers"; return; fi
  mkdir -p "$DIR/artifacts"
  local store
  if [ "$BACKEND" = postgres ]; then store="$DB_URI"; else store="sqlite:///$DIR/mlflow.db"; fi
  # --artifacts-destination: the server proxies artifacts (clients need no shared file system)
  nohup "$MLFLOW" server --backend-store-uri "$store" --artifacts-destination "$DIR/artifacts" \
    --host "$HOST" --port "$PORT" --workers "$WORKERS" >"$DIR/mlflow.log" 2>&1 &
  echo $! >"$DIR/mlflow.pid"
  local i
  for i in $(seq 1 240); do
    health && { echo "tracking-server: $URI (store $store, artifacts $DIR/artifacts)"; return; }
    kill -0 "$(cat "$DIR/mlflow.pid")" 2>/dev/null || die "mlflow server exited, see $DIR/mlflow.log: $(tail -n 3 "$DIR/mlflow.log" | tr '\n' ' ')"
    sleep 0.5
  done
  die "mlflow server did not answer $URI/health within 120 s, see $DIR/mlflow.log"
}

stop_mlflow() {
  [ -f "$DIR/mlflow.pid" ] || return 0
  local pid; pid="$(cat "$DIR/mlflow.pid")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -- "$pid" 2>/dev/null || true
    local i; for i in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$DIR/mlflow.pid"
}

case "${1:-}" in
  install) install_pg ;;
  start)
    [ "$BACKEND" = postgres ] && start_pg
    start_mlflow ;;
  stop) stop_mlflow; [ "$BACKEND" = postgres ] && stop_pg; true ;;
  status) health && echo "$URI" || { echo "tracking-server: $URI does not answer" >&2; exit 1; } ;;
  uri) echo "$URI" ;;
  *) sed -n '2,18p' "$0"; exit 2 ;;
esac
