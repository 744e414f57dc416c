#!/bin/bash
# Entrypoint of the project's MySQL-compatible workload image (Debian's MariaDB): the contract
# the documented StatefulSet relies on from mysql:5.7's entrypoint.
# - MYSQL_ROOT_PASSWORD (or MYSQL_ALLOW_EMPTY_PASSWORD=yes) is required;
# - an empty /var/lib/mysql is initialised on first start, root@'%' created with that password;
# - an initialised data directory is used as it is (the password is not changed);
# - mariadbd runs as pid 1's exec target, listening on every address on 3306.
# The password is never echoed.
set -euo pipefail
datadir=/var/lib/mysql

log() { printf '%s [Entrypoint]: %s\n' "$(date -u +%FT%TZ)" "$*"; }

if [ "${1:-mariadbd}" != mariadbd ] && [ "${1:-}" != mysqld ]; then
  exec "$@"
fi
shift || true

if [ -z "${MYSQL_ROOT_PASSWORD:-}" ] && [ "${MYSQL_ALLOW_EMPTY_PASSWORD:-}" != yes ]; then
  log "error: database is uninitialized and password option is not specified"
  log "  You need to specify one of MYSQL_ROOT_PASSWORD and MYSQL_ALLOW_EMPTY_PASSWORD"
  exit 1
fi

mkdir -p /run/mysqld
chown mysql:mysql /run/mysqld "$datadir"

if [ ! -d "$datadir/mysql" ]; then
  log "initialising an empty $datadir"
  # A half-made data dir from a killed first start is not a database: start over.
  find "$datadir" -mindepth 1 -delete
  mariadb-install-db --user=mysql --datadir="$datadir" --auth-root-authentication-method=normal \
    --skip-test-db --skip-name-resolve >/dev/null
  # A first start killed half-way must not leave a data dir that looks initialised.
  trap 'find "$datadir" -mindepth 1 -delete' EXIT
  init=/run/mysqld/init.sql
  umask 077
  {
    # Bootstrap mode starts without the grant tables: load them, or CREATE USER fails.
    printf "FLUSH PRIVILEGES;\n"
    # mariadb-install-db also makes password-less root@127.0.0.1, root@::1 and
    # root@<hostname>, which a TCP client from the pod itself (port-forward) would match
    # before root@'%': as mysql:5.7's entrypoint, keep only root@localhost and root@'%'.
    printf "DROP USER IF EXISTS 'root'@'127.0.0.1', 'root'@'::1', 'root'@'%s';\n" "$(hostname)"
    printf "CREATE USER IF NOT EXISTS 'root'@'%%' IDENTIFIED BY '%s';\n" "${MYSQL_ROOT_PASSWORD//\'/\'\'}"
    printf "GRANT ALL ON *.* TO 'root'@'%%' WITH GRANT OPTION;\n"
    printf "ALTER USER 'root'@'localhost' IDENTIFIED BY '%s';\n" "${MYSQL_ROOT_PASSWORD//\'/\'\'}"
    printf "FLUSH PRIVILEGES;\n"
  } >"$init"
  chown mysql:mysql "$init"
  mariadbd --user=mysql --datadir="$datadir" --skip-networking --bootstrap <"$init"
  rm -f "$init"
  trap - EXIT
  log "initialised; root@'%' created"
fi

log "starting mariadbd $(mariadbd --version | awk '{print $3}')"
exec mariadbd --user=mysql --datadir="$datadir" --bind-address=0.0.0.0 --port=3306 \
  --skip-name-resolve "$@"
