#!/usr/bin/env bash
# A dedicated development Docker daemon reachable only over mutual TLS on 127.0.0.1.
#
#   deploy/dev/dockerd.sh start|stop|restart|status
#   deploy/dev/dockerd.sh stop --fast | restart --fast
#
# `stop` sends SIGTERM and waits: dockerd first stops every running container
# with that container's stop timeout (10 s by default; busybox httpd as PID 1
# ignores SIGTERM, so it takes the whole 10 s). With --fast, container processes
# still alive 1 s after dockerd began shutting down get SIGKILL, so a stop takes
# about 2 s. Either way restart policies are untouched: a daemon shutdown is not a
# "manual stop", so --restart=always/unless-stopped containers come back on start.
#
# Environment (all optional):
#   SESSIONCTL_STATE_DIR         state dir (default <repo>/.sessionctl)
#   SESSIONCTL_DOCKER_PORT       TLS port on 127.0.0.1 (default 2376)
#   SESSIONCTL_DOCKER_BRIDGE     bridge interface name (max 15 chars; default sctl0 for
#                                port 2376, else sctl<port>)
#   SESSIONCTL_DOCKER_BRIDGE_CIDR  address given to that bridge (default 10.231.0.1/24
#                                for port 2376, else 10.231.<port%250+1>.1/24)
#   SESSIONCTL_DOCKER_ADDRESS_POOL  where per-session networks get their /27 subnets
#                                (default 10.<100+port%100>.0.0/16)
#   SESSIONCTL_DOCKER_EXEC_ROOT  exec root (default /run/sctl-docker-<port>)
#   SESSIONCTL_DOCKER_STOP_TIMEOUT  seconds to wait for a clean stop (default 60)
#   SESSIONCTL_DOCKER_DIR        this daemon's directory (default $STATE/docker); the extra
#                                daemons of SESSIONCTL_HOSTS=N live in $STATE/hosts/<port>
#   SESSIONCTL_DOCKER_SERVER_CERTS  directory with this daemon's server-cert.pem and
#                                server-key.pem (default $STATE/certs); the CA and the
#                                client certificate always come from $STATE/certs
#
# Layout under $STATE/docker: data/ (data-root), dockerd.pid, dockerd.log,
# daemon.json (empty, so /etc/docker/daemon.json is never read), bridge-created
# (holds the bridge's name when we created it, so env-down may delete it).
#
# No unix socket is ever created: the only -H is tcp://127.0.0.1:PORT with --tlsverify.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
STATE=${SESSIONCTL_STATE_DIR:-$REPO/.sessionctl}
CERTS=$STATE/certs
DDIR=${SESSIONCTL_DOCKER_DIR:-$STATE/docker}
SERVER_CERTS=${SESSIONCTL_DOCKER_SERVER_CERTS:-$CERTS}
PIDFILE=$DDIR/dockerd.pid
LOG=$DDIR/dockerd.log
PORT=${SESSIONCTL_DOCKER_PORT:-2376}
# A second daemon (say, another checkout) then needs only another port.
if [[ $PORT == 2376 ]]; then
  BRIDGE=${SESSIONCTL_DOCKER_BRIDGE:-sctl0}
  BRIDGE_CIDR=${SESSIONCTL_DOCKER_BRIDGE_CIDR:-10.231.0.1/24}
else
  BRIDGE=${SESSIONCTL_DOCKER_BRIDGE:-sctl$PORT}
  BRIDGE_CIDR=${SESSIONCTL_DOCKER_BRIDGE_CIDR:-10.231.$((PORT % 250 + 1)).1/24}
fi
# Where the daemon carves session networks (a bridge per session, src/docker/networks.ts):
# a /16 of its own per port, so that daemons side by side never hand out the same subnet.
ADDRESS_POOL=${SESSIONCTL_DOCKER_ADDRESS_POOL:-10.$((PORT % 100 + 100)).0.0/16}
# Unix socket paths (containerd's, under exec-root) are limited to 108 bytes,
# so the exec root must be short and must not live under the repo.
EXEC_ROOT=${SESSIONCTL_DOCKER_EXEC_ROOT:-/run/sctl-docker-$PORT}
STOP_TIMEOUT=${SESSIONCTL_DOCKER_STOP_TIMEOUT:-60}
START_TIMEOUT=30

# dockerd, docker-proxy, runc and ip live in sbin; npm may run us with a PATH without it.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH

# Prefer Debian's CLI (same version as the daemon, 20.10). Newer CLIs negotiate
# the API version down by themselves.
if [[ -x /usr/bin/docker ]]; then DOCKER_BIN=/usr/bin/docker; else DOCKER_BIN=$(command -v docker || true); fi

log() { echo "dockerd: $*"; }
die() { echo "dockerd: ERROR: $*" >&2; exit 1; }

docker_cli() {
  "$DOCKER_BIN" --tlsverify --tlscacert "$CERTS/ca.pem" --tlscert "$CERTS/cert.pem" \
    --tlskey "$CERTS/key.pem" -H "tcp://127.0.0.1:$PORT" "$@"
}

# Prints the pid if our dockerd is running (pidfile present, process alive and
# really a dockerd), else nothing; returns accordingly.
running_pid() {
  [[ -s $PIDFILE ]] || return 1
  local pid
  pid=$(<"$PIDFILE")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  [[ $(cat "/proc/$pid/comm" 2>/dev/null) == dockerd ]] || return 1
  echo "$pid"
}

answers() { docker_cli version --format '{{.Server.Version}}' >/dev/null 2>&1; }

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }

# "pid N: command line" of whoever listens on 127.0.0.1:$PORT (best effort).
port_owner() {
  local opid
  opid=$(ss -ltnpH "sport = :$PORT" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n1 | cut -d= -f2 || true)
  [[ -n $opid ]] && echo "pid $opid: $(tr '\0' ' ' <"/proc/$opid/cmdline" 2>/dev/null | cut -c1-300)"
}

# Another dockerd (e.g. one started from another checkout or state dir) that
# already uses our bridge: two daemons on one bridge hand out the same IPs.
other_dockerd_on_bridge() {
  local d pid cmd
  for d in /proc/[0-9]*; do
    pid=${d#/proc/}
    [[ $(cat "$d/comm" 2>/dev/null) == dockerd ]] || continue
    cmd=$(tr '\0' ' ' <"$d/cmdline" 2>/dev/null) || continue
    if [[ " $cmd " == *" --bridge $BRIDGE "* || " $cmd " == *" --bridge=$BRIDGE "* || " $cmd " == *" -b $BRIDGE "* ]]; then
      echo "pid $pid: ${cmd:0:300}"
      return 0
    fi
  done
  return 1
}

ensure_bridge() {
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add "$BRIDGE" type bridge
    echo "$BRIDGE" >"$DDIR/bridge-created"
    log "created bridge $BRIDGE"
  fi
  if ! ip -o -4 addr show dev "$BRIDGE" | grep -qw "inet ${BRIDGE_CIDR}"; then
    ip addr add "$BRIDGE_CIDR" dev "$BRIDGE"
  fi
  ip link set "$BRIDGE" up
}

# dockerd 20.10 bind-mounts its data-root onto itself (to make it a shared mount)
# and undoes that on a clean shutdown. After a crash or a failed start the mount
# stays and `rm -rf $STATE` fails with EBUSY; undo it once no dockerd runs.
release_data_root() {
  if command -v mountpoint >/dev/null && mountpoint -q "$DDIR/data" 2>/dev/null; then
    umount "$DDIR/data" 2>/dev/null || umount -l "$DDIR/data" 2>/dev/null || true
  fi
}

tail_log() { echo "----- last lines of $LOG -----" >&2; tail -n 30 "$LOG" >&2 2>/dev/null || true; }

do_start() {
  [[ $(id -u) -eq 0 ]] || die "must run as root to start dockerd"
  command -v dockerd >/dev/null || die "dockerd not found (apt-get install docker.io)"
  [[ -n $DOCKER_BIN ]] || die "docker CLI not found (apt-get install docker.io)"
  for f in ca.pem cert.pem key.pem; do
    [[ -s $CERTS/$f ]] || die "missing $CERTS/$f (run deploy/dev/certs.sh $CERTS)"
  done
  for f in server-cert.pem server-key.pem; do
    [[ -s $SERVER_CERTS/$f ]] || die "missing $SERVER_CERTS/$f (run deploy/dev/env-up.sh)"
  done

  local pid
  if pid=$(running_pid); then
    if answers; then log "already running (pid $pid) on tcp://127.0.0.1:$PORT"; return 0; fi
    # Running but not answering yet (e.g. a start in progress): wait for it below.
    log "pid $pid is running but not answering yet; waiting"
  else
    rm -f "$PIDFILE"
    if port_in_use; then
      die "127.0.0.1:$PORT is already in use by another process, not the dockerd of $STATE
  ($(port_owner || echo 'owner unknown'))
  Stop it (e.g. SESSIONCTL_STATE_DIR=<its state dir> deploy/dev/env-down.sh) or pick
  another SESSIONCTL_DOCKER_PORT."
    fi
    local other
    if other=$(other_dockerd_on_bridge); then
      die "bridge $BRIDGE is in use by another dockerd ($other); set SESSIONCTL_DOCKER_BRIDGE and SESSIONCTL_DOCKER_BRIDGE_CIDR"
    fi
    mkdir -p "$DDIR/data" "$EXEC_ROOT"
    # env-down finds every daemon of a multi-host environment by this file.
    echo "$PORT" >"$DDIR/port"
    # Our own (empty) config file, so a system /etc/docker/daemon.json never leaks in.
    [[ -f $DDIR/daemon.json ]] || echo '{}' >"$DDIR/daemon.json"
    ensure_bridge

    # Why these flags:
    #  --iptables=false --ip-masq=false --ip-forward=false: containers get no route
    #    out of the machine (nothing is NATed or forwarded), and several daemons on
    #    one host do not fight over the shared DOCKER iptables chains. Published
    #    ports still work: docker-proxy (userland proxy) listens on 127.0.0.1:<port>
    #    and forwards to the container over our bridge.
    #  --ip 127.0.0.1: a port published without an address (-p 8080) binds to
    #    127.0.0.1 instead of 0.0.0.0.
    #  --default-address-pool: session networks come from this daemon's own range.
    #    With ip_forward=0 (ours) the host routes nothing between bridges, so a session
    #    cannot reach another session's network; production daemons get the same from
    #    Docker's DOCKER-ISOLATION iptables rules (docs/isolation.md).
    #  --containerd-namespace: a separate namespace in case a system containerd is
    #    running at /run/containerd/containerd.sock (then dockerd 20.10 uses it instead
    #    of starting its own under --exec-root, and names must not clash).
    echo "===== $(date -Is) dockerd.sh start =====" >>"$LOG"
    setsid nohup dockerd \
      --config-file "$DDIR/daemon.json" \
      --host "tcp://127.0.0.1:$PORT" \
      --tlsverify \
      --tlscacert "$CERTS/ca.pem" \
      --tlscert "$SERVER_CERTS/server-cert.pem" \
      --tlskey "$SERVER_CERTS/server-key.pem" \
      --data-root "$DDIR/data" \
      --exec-root "$EXEC_ROOT" \
      --pidfile "$PIDFILE" \
      --bridge "$BRIDGE" \
      --default-address-pool "base=$ADDRESS_POOL,size=27" \
      --iptables=false --ip-masq=false --ip-forward=false \
      --userland-proxy=true \
      --ip 127.0.0.1 \
      --containerd-namespace sessionctl-dev \
      --containerd-plugins-namespace sessionctl-dev-plugins \
      </dev/null >>"$LOG" 2>&1 &
    pid=$!
    disown "$pid" 2>/dev/null || true
  fi

  local deadline=$((SECONDS + START_TIMEOUT))
  until answers; do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail_log
      release_data_root
      die "dockerd exited during start-up (log: $LOG)"
    fi
    if ((SECONDS >= deadline)); then
      tail_log
      die "dockerd did not answer on tcp://127.0.0.1:$PORT within ${START_TIMEOUT}s (pid $pid, log: $LOG)"
    fi
    sleep 0.2
  done
  log "running (pid $pid) on tcp://127.0.0.1:$PORT, version $(docker_cli version --format '{{.Server.Version}}')"
}

do_stop() {
  local fast=${1:-} pid
  if ! pid=$(running_pid); then
    rm -f "$PIDFILE"
    release_data_root
    log "not running"
    return 0
  fi
  # Read the managed containerd's pid now: if dockerd has to be killed, we stop it too.
  local cpid=""
  [[ -s $EXEC_ROOT/containerd/containerd.pid ]] && cpid=$(<"$EXEC_ROOT/containerd/containerd.pid")
  local cpids=()
  if [[ $fast == --fast ]]; then
    # Container init pids, read before the daemon stops answering.
    mapfile -t cpids < <(docker_cli ps -q 2>/dev/null | xargs -r "$DOCKER_BIN" --tlsverify \
      --tlscacert "$CERTS/ca.pem" --tlscert "$CERTS/cert.pem" --tlskey "$CERTS/key.pem" \
      -H "tcp://127.0.0.1:$PORT" inspect --format '{{.State.Pid}}' 2>/dev/null | grep -E '^[1-9][0-9]*$' || true)
  fi
  kill -TERM "$pid"
  if ((${#cpids[@]} > 0)); then
    # By now dockerd has sent every container its stop signal and cancelled its
    # restart manager, so these deaths do not trigger restarts.
    sleep 1
    kill -KILL "${cpids[@]}" 2>/dev/null || true
  fi
  # dockerd stops running containers first (each gets its own stop timeout, 10 s by
  # default; busybox httpd as PID 1 ignores SIGTERM so it uses all of it).
  local deadline=$((SECONDS + STOP_TIMEOUT))
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      echo "dockerd: WARNING: pid $pid still running after ${STOP_TIMEOUT}s, sending SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
      if [[ $cpid =~ ^[0-9]+$ ]]; then kill -TERM "$cpid" 2>/dev/null || true; fi
      sleep 1
      break
    fi
    sleep 0.2
  done
  rm -f "$PIDFILE"
  release_data_root
  log "stopped (was pid $pid)"
}

do_status() {
  local pid
  if pid=$(running_pid) && answers; then
    log "running (pid $pid) on tcp://127.0.0.1:$PORT"
    return 0
  elif [[ -n ${pid:-} ]]; then
    log "pid $pid alive but not answering on tcp://127.0.0.1:$PORT"
    return 1
  fi
  log "not running"
  return 3
}

case ${1:-} in
  start) do_start ;;
  stop) do_stop "${2:-}" ;;
  restart) do_stop "${2:-}"; do_start ;;
  status) do_status ;;
  *) echo "usage: $0 start|stop [--fast]|restart [--fast]|status" >&2; exit 2 ;;
esac
