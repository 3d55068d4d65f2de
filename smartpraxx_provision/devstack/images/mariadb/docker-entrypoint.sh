#!/bin/bash
# Entrypoint of smartpraxx/mariadb:dev: the official `mariadb` image's interface on Debian's
# MariaDB. On the first start (empty /var/lib/mysql) it initialises the data directory from
#   MARIADB_ROOT_PASSWORD | MARIADB_ALLOW_EMPTY_ROOT_PASSWORD | MARIADB_RANDOM_ROOT_PASSWORD,
#   MARIADB_ROOT_HOST (default %), MARIADB_DATABASE, MARIADB_USER, MARIADB_PASSWORD
# each also as MYSQL_* (MARIADB_* wins) and as *_FILE (read from a file), and runs
# /docker-entrypoint-initdb.d/*.sql|*.sh. Secrets travel only through environment and the
# client's stdin, never through a command line.
set -eo pipefail
shopt -s nullglob

note() { echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) [Note] [Entrypoint]: $*"; }
fail() { echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) [ERROR] [Entrypoint]: $*" >&2; exit 1; }

# file_env VAR [DEFAULT]: VAR from $VAR or from the file named by $VAR_FILE.
file_env() {
  local var="$1" file_var="${1}_FILE" def="${2:-}" val
  if [ -n "${!var:-}" ] && [ -n "${!file_var:-}" ]; then
    fail "both $var and $file_var are set (but are exclusive)"
  fi
  val="$def"
  if [ -n "${!var:-}" ]; then
    val="${!var}"
  elif [ -n "${!file_var:-}" ]; then
    val="$(< "${!file_var}")"
  fi
  export "$var"="$val"
  unset "$file_var"
}

# mariadb_env NAME: MARIADB_NAME, falling back to MYSQL_NAME (each with *_FILE).
mariadb_env() {
  local mysql_var="MYSQL_$1" maria_var="MARIADB_$1"
  file_env "$mysql_var"
  file_env "$maria_var" "${!mysql_var}"
}

sql_escape() {
  local s="$1"
  s="${s//\\/\\\\}"
  s="${s//\'/\\\'}"
  printf '%s' "$s"
}

DATADIR=/var/lib/mysql
SOCKET=/run/mysqld/mysqld.sock

init_database() {
  mariadb_env ROOT_PASSWORD
  mariadb_env ALLOW_EMPTY_ROOT_PASSWORD
  mariadb_env RANDOM_ROOT_PASSWORD
  mariadb_env ROOT_HOST
  mariadb_env DATABASE
  mariadb_env USER
  mariadb_env PASSWORD
  : "${MARIADB_ROOT_HOST:=%}"

  if [ -z "$MARIADB_ROOT_PASSWORD" ] && [ -z "$MARIADB_ALLOW_EMPTY_ROOT_PASSWORD" ] \
     && [ -z "$MARIADB_RANDOM_ROOT_PASSWORD" ]; then
    fail "Database is uninitialized and password option is not specified
	You need to specify one of MARIADB_ROOT_PASSWORD, MARIADB_ALLOW_EMPTY_ROOT_PASSWORD and MARIADB_RANDOM_ROOT_PASSWORD"
  fi
  if [ -n "$MARIADB_USER" ] && [ -z "$MARIADB_PASSWORD" ]; then
    fail "MARIADB_USER is set but MARIADB_PASSWORD is empty"
  fi
  if [ "$MARIADB_USER" = root ]; then
    fail "MARIADB_USER=root: use MARIADB_ROOT_PASSWORD for the root user"
  fi
  if [ -n "$MARIADB_RANDOM_ROOT_PASSWORD" ]; then
    MARIADB_ROOT_PASSWORD="$(head -c 24 /dev/urandom | base64 | tr -d '/+=\n')"
    note "GENERATED ROOT PASSWORD: $MARIADB_ROOT_PASSWORD"
  fi

  note "Initializing database files"
  mariadb-install-db --user=mysql --datadir="$DATADIR" --skip-test-db \
    --auth-root-authentication-method=normal --skip-name-resolve > /dev/null
  note "Database files initialized"

  note "Starting temporary server"
  mariadbd --user=mysql --datadir="$DATADIR" --skip-networking --socket="$SOCKET" \
    --skip-log-bin "$@" &
  local pid=$! i
  for i in $(seq 60); do
    if mariadb --no-defaults --protocol=socket --socket="$SOCKET" -uroot \
         -e 'SELECT 1' > /dev/null 2>&1; then
      break
    fi
    kill -0 "$pid" 2> /dev/null || fail "temporary server failed to start"
    sleep 1
  done
  [ "$i" -lt 60 ] || fail "temporary server did not answer within 60s"
  note "Temporary server started."

  local root_pw user_pw hc_pw
  hc_pw="$(head -c 24 /dev/urandom | base64 | tr -d '/+=\n')"
  (
    umask 077
    printf '[mariadb-client]\nport=3306\nuser=healthcheck\npassword=%s\n' "$hc_pw" \
      > "$DATADIR/.my-healthcheck.cnf"
  )
  chown mysql:mysql "$DATADIR/.my-healthcheck.cnf"
  root_pw="$(sql_escape "$MARIADB_ROOT_PASSWORD")"
  user_pw="$(sql_escape "$MARIADB_PASSWORD")"
  {
    echo "SET @@SESSION.SQL_LOG_BIN=0;"
    echo "DROP USER IF EXISTS ''@'localhost', ''@'$(hostname)';"
    echo "DROP USER IF EXISTS 'root'@'127.0.0.1', 'root'@'::1', 'root'@'$(hostname)';"
    echo "ALTER USER 'root'@'localhost' IDENTIFIED BY '${root_pw}';"
    if [ "$MARIADB_ROOT_HOST" != localhost ]; then
      echo "CREATE USER 'root'@'$(sql_escape "$MARIADB_ROOT_HOST")' IDENTIFIED BY '${root_pw}';"
      echo "GRANT ALL ON *.* TO 'root'@'$(sql_escape "$MARIADB_ROOT_HOST")' WITH GRANT OPTION;"
    fi
    if [ -n "$MARIADB_DATABASE" ]; then
      note "Creating database ${MARIADB_DATABASE}" >&2
      echo "CREATE DATABASE IF NOT EXISTS \`${MARIADB_DATABASE//\`/\`\`}\`;"
    fi
    if [ -n "$MARIADB_USER" ]; then
      note "Creating user ${MARIADB_USER}" >&2
      echo "CREATE USER '$(sql_escape "$MARIADB_USER")'@'%' IDENTIFIED BY '${user_pw}';"
      if [ -n "$MARIADB_DATABASE" ]; then
        echo "GRANT ALL ON \`${MARIADB_DATABASE//\`/\`\`}\`.* TO '$(sql_escape "$MARIADB_USER")'@'%';"
      fi
    fi
    # like the official image: a credential for healthcheck.sh, without privileges
    local hc_host
    for hc_host in 127.0.0.1 ::1 localhost; do
      echo "CREATE USER 'healthcheck'@'${hc_host}' IDENTIFIED BY '${hc_pw}';"
    done
    echo "FLUSH PRIVILEGES;"
  } | mariadb --no-defaults --protocol=socket --socket="$SOCKET" -uroot

  local f
  for f in /docker-entrypoint-initdb.d/*; do
    case "$f" in
      *.sh) note "running $f"; . "$f" ;;
      *.sql)
        note "running $f"
        MYSQL_PWD="$MARIADB_ROOT_PASSWORD" mariadb --no-defaults --protocol=socket \
          --socket="$SOCKET" -uroot ${MARIADB_DATABASE:+"--database=$MARIADB_DATABASE"} < "$f"
        ;;
      *) note "ignoring $f" ;;
    esac
  done

  note "Stopping temporary server"
  kill -TERM "$pid"
  wait "$pid" || true
  note "MariaDB init process done. Ready for start up."
}

if [ "${1:0:1}" = '-' ]; then
  set -- mariadbd "$@"
fi

if [ "$1" = mariadbd ] || [ "$1" = mysqld ]; then
  shift
  mkdir -p /run/mysqld "$DATADIR"
  chown mysql:mysql /run/mysqld
  find "$DATADIR" \! -user mysql -exec chown mysql:mysql '{}' +
  if [ ! -d "$DATADIR/mysql" ]; then
    init_database "$@"
  fi
  unset MARIADB_ROOT_PASSWORD MYSQL_ROOT_PASSWORD MARIADB_PASSWORD MYSQL_PASSWORD
  exec mariadbd --user=mysql --datadir="$DATADIR" "$@"
fi

exec "$@"
