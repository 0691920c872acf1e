#!/usr/bin/env bash
# Make sure RabbitMQ (with its management API) and MariaDB answer on 127.0.0.1; idempotent.
# Used by .ci/run and `make test`; installs a server with apt-get only when its binary is missing.
set -uo pipefail

TIMEOUT=${INFRA_TIMEOUT:-60}
MGMT_URL=http://127.0.0.1:15672/api/overview
SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
APT_UPDATED=

say() { echo "ensure_infra: $*"; }
die() { echo "ensure_infra: ERROR: $*" >&2; exit 1; }

# wait_for SECONDS CMD...: retry CMD once a second until it succeeds or the time is up.
wait_for() {
  local end=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do [ "$SECONDS" -ge "$end" ] && return 1; sleep 1; done
}

apt_install() {
  command -v apt-get >/dev/null || die "$1 is not installed and there is no apt-get; install it by hand"
  if [ -z "$APT_UPDATED" ]; then
    say "apt-get update"; $SUDO apt-get update -qq >/dev/null || die "apt-get update failed"; APT_UPDATED=1
  fi
  say "installing $1"
  # The package's own attempt to start the server may fail without systemd; we start it below.
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >/dev/null || say "apt-get install $1 reported errors; continuing"
}

mgmt_ok() { curl -sf -m 3 -u guest:guest "$MGMT_URL" >/dev/null; }
rabbit_ok() { timeout 20 rabbitmqctl -q status >/dev/null 2>&1; }
rabbit_started() { timeout 15 rabbitmqctl -q await_startup --timeout 10 >/dev/null 2>&1; }

# --- RabbitMQ --------------------------------------------------------------------------------
# A broker that already serves the management API is enough (also covers one run by docker compose).
if mgmt_ok; then
  say "RabbitMQ OK (management API answers)"
else
  command -v rabbitmq-server >/dev/null || apt_install rabbitmq-server
  command -v rabbitmqctl >/dev/null || die "rabbitmqctl still missing after install"
  if rabbit_ok; then
    say "RabbitMQ running"
  else
    say "starting RabbitMQ (rabbitmq-server -detached)"
    $SUDO rabbitmq-server -detached >/dev/null 2>&1
    # await_startup fails at once while the node is not yet registered, so retry it.
    wait_for "$TIMEOUT" rabbit_started || die "RabbitMQ not started within ${TIMEOUT}s; see /var/log/rabbitmq/"
    say "RabbitMQ started"
  fi
  say "enabling rabbitmq_management (nameko's pytest fixtures use its API)"
  $SUDO rabbitmq-plugins -q enable rabbitmq_management >/dev/null || die "rabbitmq-plugins enable rabbitmq_management failed"
  wait_for "$TIMEOUT" mgmt_ok || die "management API $MGMT_URL not answering after ${TIMEOUT}s"
  say "RabbitMQ OK (management API answers)"
fi

# --- MariaDB ---------------------------------------------------------------------------------
# `mysqladmin ping` says "alive" even when login is refused, so readiness means a real query.
mysql_ok() { mysql -h127.0.0.1 -uroot --connect-timeout=3 -e 'select 1' >/dev/null 2>&1; }

if command -v mysql >/dev/null && mysql_ok; then
  say "MariaDB OK"
else
  MARIADBD=$(command -v mariadbd || echo /usr/sbin/mariadbd)
  [ -x "$MARIADBD" ] || { apt_install mariadb-server; MARIADBD=$(command -v mariadbd || echo /usr/sbin/mariadbd); }
  [ -x "$MARIADBD" ] || die "mariadbd still missing after install"
  if ! mysqladmin --connect-timeout=3 ping >/dev/null 2>&1; then
    say "starting MariaDB"
    # mariadbd refuses to run as root; its socket directory must belong to mysql.
    $SUDO mkdir -p /run/mysqld && $SUDO chown mysql:mysql /run/mysqld
    [ -d /var/lib/mysql/mysql ] || $SUDO mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null 2>&1
    $SUDO start-stop-daemon --start --oknodo --background --exec "$MARIADBD" -- --user=mysql \
      || die "start-stop-daemon could not start $MARIADBD"
  fi
  end=$((SECONDS + TIMEOUT)); fixed=
  until mysql_ok; do
    err=$(mysql -h127.0.0.1 -uroot --connect-timeout=3 -e 'select 1' 2>&1 >/dev/null)
    if [[ "$err" == *1698* && "$fixed" != *1698* ]]; then
      # Debian's root@localhost uses unix_socket only; allow the empty password over TCP as well.
      say "root refused over TCP (ERROR 1698); allowing empty password via the socket"
      $SUDO mysql -uroot -e "ALTER USER root@localhost IDENTIFIED VIA mysql_native_password USING PASSWORD('') OR unix_socket" \
        || die "ALTER USER root@localhost failed"
      fixed+=1698; continue
    fi
    if [[ "$err" == *1130* && "$fixed" != *1130* ]]; then
      # With skip-name-resolve, 127.0.0.1 never matches root@localhost: add root@127.0.0.1 too.
      say "root@127.0.0.1 unknown (ERROR 1130); creating it via the socket"
      $SUDO mysql -uroot -e "CREATE USER IF NOT EXISTS root@'127.0.0.1' IDENTIFIED VIA mysql_native_password USING PASSWORD('');
        GRANT ALL PRIVILEGES ON *.* TO root@'127.0.0.1' WITH GRANT OPTION" || die "creating root@127.0.0.1 failed"
      fixed+=1130; continue
    fi
    [ "$SECONDS" -ge "$end" ] && die "MariaDB not answering 'select 1' as root on 127.0.0.1:3306 after ${TIMEOUT}s: $err"
    sleep 1
  done
  say "MariaDB OK"
fi

# The suite runs whole stacks side by side (each service pools up to max_workers + 6
# connections, some tests two instances of each): more than MariaDB's default 151.
WANT_CONNECTIONS=${MARIADB_MAX_CONNECTIONS:-500}
have=$(mysql -h127.0.0.1 -uroot -N -e 'select @@max_connections' 2>/dev/null || echo 0)
if [ "${have:-0}" -lt "$WANT_CONNECTIONS" ]; then
  mysql -h127.0.0.1 -uroot -e "SET GLOBAL max_connections = $WANT_CONNECTIONS" \
    && say "MariaDB max_connections $have -> $WANT_CONNECTIONS" \
    || say "could not raise MariaDB max_connections (is $have); tests may hit 'Too many connections'"
fi

# Node.js and npm: the gRPC test runs a Node client built from the .proto files alone.
if command -v node >/dev/null && command -v npm >/dev/null; then
  say "Node.js OK ($(node --version))"
else
  apt_install nodejs; apt_install npm
  command -v node >/dev/null && command -v npm >/dev/null || die "Node.js/npm could not be installed"
  say "Node.js installed ($(node --version))"
fi
