# Source this file: start_postgres starts a throw-away PostgreSQL 15 server on 127.0.0.1
# and exports TETHER_TEST_PG; stop_postgres stops it and removes its data.
# The server refuses to run as root, so as root it runs as the `postgres` user.
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}

_as_pg() {
    if [ "$(id -u)" -eq 0 ]; then su postgres -s /bin/sh -c "$*"; else sh -c "$*"; fi
}

start_postgres() {
    if [ ! -x "$PG_BIN/initdb" ]; then
        echo "installing postgresql with apt-get" >&2
        local sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
        $sudo apt-get install -y -qq postgresql >/dev/null 2>&1 \
            || { $sudo apt-get update -qq >/dev/null && $sudo apt-get install -y -qq postgresql >/dev/null; }
    fi
    PG_DIR=$(mktemp -d /tmp/tether-pg.XXXXXX)
    [ "$(id -u)" -eq 0 ] && chown postgres "$PG_DIR"
    local port
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    _as_pg "'$PG_BIN/initdb' -D '$PG_DIR/data' -A trust -U postgres --no-sync" >/dev/null
    # in the configuration file, so that a test can stop and start the server again.
    # fsync = off: a throw-away server need not survive a crash of the machine, only of its
    # processes (test_pg_restart stops it with -m immediate), which written-but-unsynced WAL
    # does; each fresh schema's migration costs ~0.04 s instead of ~0.2 s (docs/architecture.md)
    _as_pg "printf '%s\n' \"listen_addresses = '127.0.0.1'\" 'port = $port' \
        \"unix_socket_directories = '$PG_DIR'\" 'max_connections = 300' 'fsync = off' \
        >> '$PG_DIR/data/postgresql.conf'"
    _as_pg "'$PG_BIN/pg_ctl' -D '$PG_DIR/data' -l '$PG_DIR/log' -w -t 60 start" >/dev/null
    export TETHER_TEST_PG="postgresql://postgres@127.0.0.1:$port/postgres"
    export TETHER_TEST_PG_DATA="$PG_DIR/data" TETHER_TEST_PG_BIN="$PG_BIN"
    echo "PostgreSQL for the tests: $TETHER_TEST_PG" >&2
}

stop_postgres() {
    if [ -n "${PG_DIR:-}" ]; then
        _as_pg "'$PG_BIN/pg_ctl' -D '$PG_DIR/data' -m immediate stop" >/dev/null 2>&1 || true
        rm -rf "$PG_DIR"
    fi
}
