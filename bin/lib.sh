# Shared by bin/run and bin/test. Creates or reuses .venv and keeps it in step with pyproject.toml.
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3

venv_ensure() {
  if [ ! -x .venv/bin/python ]; then
    echo "Creating the virtual environment in .venv ..."
    "$PYTHON" -m venv .venv
  fi
  local stamp=.venv/.backstop-installed want
  want=$(sha256sum pyproject.toml | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "Installing dependencies ..."
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet ".[dev]"
    echo "$want" > "$stamp"
  fi
}

_pg_up() { .venv/bin/python -c "import psycopg,sys; psycopg.connect('$1', connect_timeout=2).close()" 2>/dev/null; }
_redis_up() { .venv/bin/python -c "import redis,sys; redis.Redis.from_url('$1', socket_timeout=2).ping()" 2>/dev/null; }

services_ensure() {
  local pg_url=${TEST_DATABASE_ADMIN_URL:-postgresql://postgres@127.0.0.1:5432/postgres}
  local redis_url=${TEST_CELERY_BROKER_URL:-redis://127.0.0.1:6379/0}
  if ! _pg_up "$pg_url"; then
    echo "PostgreSQL is not answering; starting it ..."
    if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
      pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start || true
    fi
    for _ in $(seq 30); do _pg_up "$pg_url" && break; sleep 1; done
    _pg_up "$pg_url" || { echo "ERROR: cannot reach PostgreSQL at $pg_url (install it, or set TEST_DATABASE_URL)." >&2; return 1; }
  fi
  if ! _redis_up "$redis_url"; then
    echo "Redis is not answering; starting it ..."
    if command -v redis-server >/dev/null 2>&1; then
      mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
      redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
        --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
    fi
    for _ in $(seq 30); do _redis_up "$redis_url" && break; sleep 1; done
    _redis_up "$redis_url" || { echo "ERROR: cannot reach Redis at $redis_url (install it, or set TEST_CELERY_BROKER_URL)." >&2; return 1; }
  fi
}

# Browser tests (tests/browser) drive Debian's chromium package. Install it when it is missing and we
# can (root with apt-get); otherwise say loudly that those tests will be skipped.
chromium_ensure() {
  if [ -n "${BACKSTOP_CHROMIUM:-}" ] || command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ]; then
    return 0
  fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing chromium for the browser tests (apt-get) ..."
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -qq chromium >/dev/null 2>&1; then
      apt-get update -qq >/dev/null 2>&1 || true
      apt-get install -y -qq chromium >/dev/null 2>&1 || true
    fi
  fi
  if ! command -v chromium >/dev/null 2>&1 && [ ! -x /usr/bin/chromium ]; then
    echo "################################################################################" >&2
    echo "WARNING: no chromium found and it could not be installed (needs root + apt-get)." >&2
    echo "         The browser tests (tests/browser) will be SKIPPED. Install chromium, or" >&2
    echo "         set BACKSTOP_CHROMIUM=/path/to/chromium, to run them." >&2
    echo "################################################################################" >&2
  fi
}

# Debian binaries some tests drive for real (a test skips with its reason when its binary is absent):
# Prometheus and promtool (metrics, alert rules), Alertmanager (its Opsgenie notifier), Redis Sentinel
# (broker failover), wrk (intake benchmark), PostgreSQL's initdb (outages). Installed when we can (root with apt-get), like chromium.
debian_tools_ensure() {
  local missing=() pkg bin
  for pair in prometheus:promtool prometheus-alertmanager:prometheus-alertmanager redis-sentinel:redis-sentinel wrk:wrk; do
    pkg=${pair%%:*}; bin=${pair##*:}
    command -v "$bin" >/dev/null 2>&1 || missing+=("$pkg")
  done
  # The chaos run's PostgreSQL outage runs a private cluster (initdb, pg_ctl).
  command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing ${missing[*]} for the tests that drive them (apt-get) ..."
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1; then
      apt-get update -qq >/dev/null 2>&1 || true
      apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 || true
    fi
  else
    echo "WARNING: ${missing[*]} not installed (needs root + apt-get); the tests that drive them will be SKIPPED." >&2
  fi
}
