# Start throwaway PostgreSQL and Redis servers on loopback for the tests and benchmarks.
# Sourced by .ci/run; exports ATP_PG_URL and ATP_REDIS_URL.
ATP_SERVICES_DIR=${ATP_SERVICES_DIR:-/tmp/atp-services}

start_postgres() {
  local bin=/usr/lib/postgresql/15/bin port=${ATP_PG_PORT:-54329}
  local data=$ATP_SERVICES_DIR/pgdata sock=$ATP_SERVICES_DIR/pgsock
  mkdir -p "$ATP_SERVICES_DIR" "$sock"
  chown -R postgres:postgres "$ATP_SERVICES_DIR" 2>/dev/null || true
  if ! su postgres -c "$bin/pg_ctl -D $data status" >/dev/null 2>&1; then
    rm -rf "$data"
    su postgres -c "$bin/initdb -D $data -A trust -U postgres" >/dev/null
    su postgres -c "$bin/pg_ctl -D $data -o \"-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$sock -c max_connections=200\" -l $ATP_SERVICES_DIR/pg.log -w start" >/dev/null
  fi
  export ATP_PG_URL="postgres://postgres@127.0.0.1:$port/postgres"
  echo "postgres at $ATP_PG_URL"
}

start_redis() {
  local port=${ATP_REDIS_PORT:-63790}
  if ! redis-cli -p "$port" ping >/dev/null 2>&1; then
    mkdir -p "$ATP_SERVICES_DIR/redis"
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$ATP_SERVICES_DIR/redis" --daemonize yes \
      --logfile "$ATP_SERVICES_DIR/redis/redis.log" >/dev/null
    for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  fi
  export ATP_REDIS_URL="redis://127.0.0.1:$port"
  echo "redis at $ATP_REDIS_URL"
}
