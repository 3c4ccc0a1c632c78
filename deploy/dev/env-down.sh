#!/usr/bin/env bash
# Stop what deploy/dev/env-up.sh started (`npm run env:down`): the dedicated
# dockerd and the embedded PostgreSQL, each found by its pidfile, and the bridge
# dockerd.sh created. Data (docker data-root, postgres cluster), certificates and
# the env file stay, so the next env-up is quick and finds its containers/images.
# Idempotent: with nothing running it only says so.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
export SESSIONCTL_STATE_DIR=${SESSIONCTL_STATE_DIR:-$REPO/.sessionctl}
STATE=$SESSIONCTL_STATE_DIR
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH

rc=0
# Postgres first: it does not depend on docker, and it is quick.
bash "$HERE/postgres.sh" stop || rc=1
# --fast: running containers get SIGKILL 1 s into the shutdown instead of their
# full stop timeout; their restart policies still bring them back on env-up.
# stop_daemon DIR [PORT]: one dockerd and the bridge dockerd.sh created for it (name in the marker file).
stop_daemon() {
  local dir=$1 port=${2:-} env=()
  [[ -n $port ]] && env=(SESSIONCTL_DOCKER_PORT="$port" SESSIONCTL_DOCKER_DIR="$dir")
  env "${env[@]}" bash "$HERE/dockerd.sh" stop --fast || rc=1
  local marker=$dir/bridge-created bridge
  [[ -f $marker ]] || return 0
  bridge=$(<"$marker")
  if env "${env[@]}" bash "$HERE/dockerd.sh" status >/dev/null 2>&1; then
    echo "env-down: dockerd still running; leaving bridge $bridge" >&2
    rc=1
  elif [[ -n $bridge ]] && ip link show "$bridge" >/dev/null 2>&1; then
    ip link del "$bridge" && echo "env-down: removed bridge $bridge" && rm -f "$marker" || rc=1
  else
    rm -f "$marker"
  fi
}
stop_daemon "$STATE/docker"
# The other daemons of SESSIONCTL_HOSTS=N, each found by the port file dockerd.sh wrote.
for dir in "$STATE"/hosts/*/; do
  dir=${dir%/}
  [[ -s $dir/port ]] || continue
  stop_daemon "$dir" "$(<"$dir/port")"
done

((rc == 0)) && echo "env-down: done (data and certificates kept in $STATE)"
exit "$rc"
