#!/usr/bin/env bash
# Install the Debian packages PyScaler needs (scripts/system-packages.txt) and
# make sure a RabbitMQ broker answers on 127.0.0.1:5672. Idempotent: does
# nothing when everything is present, so `make test` stays fast on a warm machine.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

missing=()
while read -r pkg cmd; do
  [[ -z "$pkg" || "$pkg" == \#* ]] && continue
  # "<package> <command>": present when the command is, whoever installed it
  # (e.g. npm comes with NodeSource's nodejs, which conflicts with Debian's npm).
  [[ -n "${cmd:-}" ]] && command -v "$cmd" >/dev/null 2>&1 && continue
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done < "$here/system-packages.txt"

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

if ! port_open 127.0.0.1 5672; then
  dpkg-query -W -f='${Status}' rabbitmq-server 2>/dev/null | grep -q "install ok installed" \
    || missing+=(rabbitmq-server)
fi

# PostgreSQL and MariaDB: the dbbackends tests run on them too (`make test`).
# Installed only when nothing answers on their ports.
if ! port_open 127.0.0.1 5432; then
  dpkg-query -W -f='${Status}' postgresql 2>/dev/null | grep -q "install ok installed" \
    || missing+=(postgresql)
fi
if ! port_open 127.0.0.1 3306; then
  dpkg-query -W -f='${Status}' mariadb-server 2>/dev/null | grep -q "install ok installed" \
    || missing+=(mariadb-server)
fi

apt_get() {
  if [ "$(id -u)" -eq 0 ]; then apt-get "$@"; else sudo apt-get "$@"; fi
}

if [ ${#missing[@]} -gt 0 ]; then
  echo "Installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt_get update -qq
  # Package scripts must not start services we run ourselves on our own ports.
  apt_get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! port_open 127.0.0.1 5672; then
  echo "Starting RabbitMQ (no broker answered on 127.0.0.1:5672)"
  if [ "$(id -u)" -eq 0 ]; then rabbitmq-server -detached; else sudo rabbitmq-server -detached; fi
  # -detached returns before the broker is ready.
  for _ in $(seq 1 60); do port_open 127.0.0.1 5672 && break; sleep 1; done
  rabbitmqctl await_startup --timeout 60 >/dev/null 2>&1 || true
  port_open 127.0.0.1 5672 || { echo "RabbitMQ did not come up on 127.0.0.1:5672" >&2; exit 1; }
fi

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

if ! port_open 127.0.0.1 5432; then
  echo "Starting PostgreSQL (nothing answered on 127.0.0.1:5432)"
  pg_version=$(ls /etc/postgresql | sort -V | tail -n 1)
  hba=/etc/postgresql/$pg_version/main/pg_hba.conf
  # Test and development machines: loopback connections as any user need no
  # password (the tests connect as postgres over TCP). First match wins.
  if ! as_root grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
    as_root sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
  fi
  as_root pg_ctlcluster --skip-systemctl-redirect "$pg_version" main start
  for _ in $(seq 1 60); do port_open 127.0.0.1 5432 && break; sleep 1; done
  port_open 127.0.0.1 5432 || { echo "PostgreSQL did not come up on 127.0.0.1:5432" >&2; exit 1; }
fi

if ! port_open 127.0.0.1 3306; then
  echo "Starting MariaDB (nothing answered on 127.0.0.1:3306)"
  as_root install -d -o mysql -g mysql /run/mysqld
  as_root start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- \
    --user=mysql --bind-address=127.0.0.1
  for _ in $(seq 1 60); do port_open 127.0.0.1 3306 && break; sleep 1; done
  port_open 127.0.0.1 3306 || { echo "MariaDB did not come up on 127.0.0.1:3306" >&2; exit 1; }
  # Test and development machines: root may log in over loopback TCP without
  # a password (Debian's root@localhost accepts only the unix socket).
  as_root mariadb -uroot -e "ALTER USER root@localhost IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD('');
    CREATE USER IF NOT EXISTS root@'127.0.0.1' IDENTIFIED BY '';
    GRANT ALL PRIVILEGES ON *.* TO root@'127.0.0.1' WITH GRANT OPTION;"
fi
