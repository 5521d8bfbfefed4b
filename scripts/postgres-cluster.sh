# Sourced by scripts/test: a throw-away PostgreSQL cluster for the PostgreSQL and multi-node
# tests (Debian's `postgresql` package, installed if missing; `initdb` into a temporary
# directory, a free port on 127.0.0.1; stopped and removed by `stop_test_postgres`).
#
#   start_test_postgres   # exports SIGNET_TEST_POSTGRES_URL, SIGNET_TEST_POSTGRES_CTL,
#                         # SIGNET_TEST_POSTGRES_CA (TLS is on) and SIGNET_REQUIRE_POSTGRES=1
#   stop_test_postgres

start_test_postgres() {
    local bin
    bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
        echo "== installing PostgreSQL for the PostgreSQL and multi-node tests"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
        bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    fi
    # PostgreSQL refuses to run as root: the cluster belongs to the `postgres` user (created by
    # the package), or to the current user when that is not root.
    local as=()
    if [ "$(id -u)" = 0 ]; then
        id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
        as=(runuser -u postgres --)
    fi
    TEST_PG_DIR=$(mktemp -d /tmp/signet-pg.XXXXXX)
    [ "${#as[@]}" -gt 0 ] && chown postgres "$TEST_PG_DIR"
    local port
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    "${as[@]}" "$bin/initdb" -D "$TEST_PG_DIR/data" -U postgres --auth=trust -E UTF8 --no-locale >"$TEST_PG_DIR/initdb.log" 2>&1 \
        || { cat "$TEST_PG_DIR/initdb.log" >&2; return 1; }
    # TLS on (clients choose): a CA and a server certificate for 127.0.0.1, for the test that
    # connects with sslmode=verify-full.
    local tls="$TEST_PG_DIR/tls"
    mkdir -p "$tls"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj /CN=signet-test-db-ca -keyout "$tls/ca.key" -out "$tls/ca.pem" 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 \
        -keyout "$tls/server.key" -out "$tls/server.csr" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$tls/san.ext"
    openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" -CAcreateserial \
        -days 2 -extfile "$tls/san.ext" -out "$tls/server.pem" 2>/dev/null
    chmod 600 "$tls/server.key"
    [ "${#as[@]}" -gt 0 ] && chown -R postgres "$tls"
    "${as[@]}" "$bin/pg_ctl" -D "$TEST_PG_DIR/data" -l "$TEST_PG_DIR/server.log" -w -t 60 \
        -o "-p $port -k $TEST_PG_DIR -c listen_addresses=127.0.0.1 -c max_connections=500 -c ssl=on -c ssl_cert_file=$tls/server.pem -c ssl_key_file=$tls/server.key" start >/dev/null \
        || { cat "$TEST_PG_DIR/server.log" >&2; return 1; }
    export SIGNET_TEST_POSTGRES_CA="$tls/ca.pem"
    TEST_PG_CTL=("${as[@]}" "$bin/pg_ctl" -D "$TEST_PG_DIR/data")
    export SIGNET_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/postgres"
    # The outage test restarts the server with this (`$SIGNET_TEST_POSTGRES_CTL restart`).
    export SIGNET_TEST_POSTGRES_CTL="${as[*]} $bin/pg_ctl -D $TEST_PG_DIR/data -w -t 60"
    export SIGNET_REQUIRE_POSTGRES=1
    echo "== PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (throw-away cluster in $TEST_PG_DIR)"
}

stop_test_postgres() {
    if [ -n "${TEST_PG_DIR:-}" ]; then
        "${TEST_PG_CTL[@]}" -m immediate stop >/dev/null 2>&1 || true
        rm -rf "$TEST_PG_DIR"
        TEST_PG_DIR=
    fi
}
