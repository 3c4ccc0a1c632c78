#!/usr/bin/env bash
# Bring up the development/test environment (`npm run env:up`):
#   Debian packages (docker.io, busybox-static, docker-registry, apache2-utils) -> mTLS certificates -> dedicated dockerd on tcp://127.0.0.1:2376
#   -> image sessionctl/base:dev -> embedded PostgreSQL (unless DATABASE_URL is
#   given) -> $STATE/env for `. .sessionctl/env`.
# Idempotent: every step checks first and does nothing when already done, so a
# second run takes about a second.
#
# Environment: SESSIONCTL_STATE_DIR, SESSIONCTL_DOCKER_PORT, SESSIONCTL_PG_PORT
# (see the individual scripts), DATABASE_URL (use that database instead of the
# embedded one), SESSIONCTL_HOSTS (how many dockerds, default 1: with N > 1 the
# daemons listen on SESSIONCTL_DOCKER_PORT .. +N-1, each with its own data root,
# exec root, bridge, address pool and server certificate from the one dev CA, and
# are registered as DockerHost rows; see docs/fleet.md).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
export SESSIONCTL_STATE_DIR=${SESSIONCTL_STATE_DIR:-$REPO/.sessionctl}
STATE=$SESSIONCTL_STATE_DIR
PORT=${SESSIONCTL_DOCKER_PORT:-2376}
HOSTS=${SESSIONCTL_HOSTS:-1}
[[ $HOSTS =~ ^[1-9]$ ]] || { echo "env-up: SESSIONCTL_HOSTS=$HOSTS: expected a number of Docker daemons from 1 to 9" >&2; exit 2; }
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH

T0=$(date +%s%N)
step() { echo "==> $*"; }
fail() { echo "env-up: FAILED: $*" >&2; exit 1; }
trap 'rc=$?; ((rc == 0)) || echo "env-up: FAILED (exit $rc) - see the messages above" >&2' EXIT

# --- 1. packages -------------------------------------------------------------
install_packages() {
  local pkgs=()
  command -v dockerd >/dev/null || pkgs+=(docker.io)
  # A dynamic busybox cannot run in a FROM-scratch image; busybox-static replaces it.
  if ! command -v busybox >/dev/null || ldd "$(readlink -f "$(command -v busybox)")" >/dev/null 2>&1; then
    pkgs+=(busybox-static)
  fi
  command -v openssl >/dev/null || pkgs+=(openssl)
  command -v ip >/dev/null || pkgs+=(iproute2)
  # The registry tests run Debian's registry (basic and token auth); htpasswd makes its bcrypt users.
  command -v docker-registry >/dev/null || pkgs+=(docker-registry)
  command -v htpasswd >/dev/null || pkgs+=(apache2-utils)
  # Operability tests and the benchmark: promtool/prometheus and the docker-compose users run today.
  # Installed without recommends: prometheus would bring node-exporter, one more listening service.
  local ops=()
  command -v promtool >/dev/null || ops+=(prometheus)
  command -v docker-compose >/dev/null || ops+=(docker-compose)
  ((${#pkgs[@]} + ${#ops[@]} > 0)) || return 0

  if [[ $(id -u) -ne 0 ]]; then
    echo "env-up: WARNING: missing ${pkgs[*]} ${ops[*]} but not root; skipping the install (later steps may fail)" >&2
    return 0
  fi
  step "installing ${pkgs[*]} ${ops[*]}"
  # Keep the packages' own services (system dockerd with /var/run/docker.sock,
  # system containerd) from being started by the install: policy-rc.d exit 101.
  local policy=/usr/sbin/policy-rc.d made_policy=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 0755 "$policy" && made_policy=1
  fi
  local rc=0
  apt-get update || rc=$?
  if ((rc == 0 && ${#pkgs[@]} > 0)); then DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y "${pkgs[@]}" || rc=$?; fi
  if ((rc == 0 && ${#ops[@]} > 0)); then DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends "${ops[@]}" || rc=$?; fi
  ((made_policy)) && rm -f "$policy"
  ((rc == 0)) || fail "apt-get install ${pkgs[*]} ${ops[*]} failed"
  # On a systemd machine the units are enabled for the next boot: we never want
  # the system daemon's unix socket, so disable what we just brought in.
  if [[ " ${pkgs[*]} " == *" docker.io "* && -d /run/systemd/system ]] && command -v systemctl >/dev/null; then
    systemctl disable --now docker.socket docker.service >/dev/null 2>&1 || true # never a system socket
  fi
  # Debian's registry service would listen on :5000 on every interface; the tests start their own on 127.0.0.1.
  if [[ " ${pkgs[*]} " == *" docker-registry "* && -d /run/systemd/system ]] && command -v systemctl >/dev/null; then
    systemctl disable --now docker-registry.service >/dev/null 2>&1 || true
  fi
  # Tests run their own Prometheus on a free port; the packaged service must never hold 9090.
  if [[ " ${ops[*]} " == *" prometheus "* ]]; then
    if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null; then
      systemctl disable --now prometheus.service >/dev/null 2>&1 || true
    elif command -v update-rc.d >/dev/null; then
      update-rc.d prometheus disable >/dev/null 2>&1 || true
    fi
  fi
}
install_packages

# --- 2. certificates ---------------------------------------------------------
mkdir -p "$STATE"
ca_before=$(sha256sum "$STATE/certs/ca.pem" 2>/dev/null || true)
bash "$HERE/certs.sh" "$STATE/certs"
ca_after=$(sha256sum "$STATE/certs/ca.pem" 2>/dev/null || true)

# --- 3. dockerd --------------------------------------------------------------
if [[ -n $ca_before && $ca_before != "$ca_after" ]] && bash "$HERE/dockerd.sh" status >/dev/null 2>&1; then
  echo "env-up: certificates were renewed; restarting dockerd to load them"
  bash "$HERE/dockerd.sh" stop
fi
bash "$HERE/dockerd.sh" start
# The other daemons of a fleet (SESSIONCTL_HOSTS > 1): same script, own directory and port. They
# start side by side (a daemon's start is mostly waiting for it to answer), each then gets the image.
start_host() {
  local hport=$1 hdir=$STATE/hosts/$1
  local -a henv=(SESSIONCTL_DOCKER_PORT="$hport" SESSIONCTL_DOCKER_DIR="$hdir" SESSIONCTL_DOCKER_SERVER_CERTS="$hdir/certs")
  bash "$HERE/host-cert.sh" "$STATE/certs" "$hdir/certs" "dev-$hport"
  if [[ -n $ca_before && $ca_before != "$ca_after" ]] && env "${henv[@]}" bash "$HERE/dockerd.sh" status >/dev/null 2>&1; then
    env "${henv[@]}" bash "$HERE/dockerd.sh" stop
  fi
  env "${henv[@]}" bash "$HERE/dockerd.sh" start
  # Every host needs the image: sessions may land on any of them.
  SESSIONCTL_DOCKER_PORT=$hport bash "$HERE/base-image.sh"
}
host_pids=()
for ((i = 1; i < HOSTS; i++)); do
  start_host $((PORT + i)) &
  host_pids+=($!)
done

# --- 4. base image -----------------------------------------------------------
bash "$HERE/base-image.sh"
for pid in "${host_pids[@]}"; do wait "$pid" || fail "starting one of the other dockerds (see the messages above)"; done

# --- 5. postgres -------------------------------------------------------------
EMBEDDED_URL=$(bash "$HERE/postgres.sh" url)
# A DATABASE_URL equal to the embedded one usually comes from a sourced
# $STATE/env; that is still ours to start.
if [[ -n ${DATABASE_URL:-} && $DATABASE_URL != "$EMBEDDED_URL" ]]; then
  echo "postgres: DATABASE_URL is set; not starting the embedded PostgreSQL"
  DB_URL=$DATABASE_URL
else
  bash "$HERE/postgres.sh" start
  DB_URL=$EMBEDDED_URL
fi

# --- 6. env file -------------------------------------------------------------
ENVFILE=$STATE/env
tmp=$(mktemp "$ENVFILE.XXXXXX")
{
  echo "# Written by deploy/dev/env-up.sh. Use: . $ENVFILE"
  printf 'export DATABASE_URL=%q\n' "$DB_URL"
  printf 'export DOCKER_HOST=%q\n' "tcp://127.0.0.1:$PORT"
  echo 'export DOCKER_TLS_VERIFY=1'
  printf 'export DOCKER_CERT_PATH=%q\n' "$STATE/certs"
  if ((HOSTS > 1)); then
    printf 'export SESSIONCTL_HOSTS_MANIFEST=%q\n' "$STATE/hosts.yaml"
    # The daemons' ports, first to last (the first is DOCKER_HOST's), for tests and benchmarks.
    echo "export SESSIONCTL_DOCKER_PORTS=$(seq -s, "$PORT" $((PORT + HOSTS - 1)))"
  fi
} >"$tmp"
chmod 0644 "$tmp"
mv -f "$tmp" "$ENVFILE"

# --- 7. the fleet's DockerHost rows ----------------------------------------------
# Writes the manifest of the daemons; a daemon the database already has (say as "default", registered
# by a controller started with DOCKER_HOST alone) keeps its name and its sessions: one endpoint is one
# host. $1: "endpoint name" lines of the registered hosts.
write_hosts_manifest() {
  local registered=$1 hport hname
  {
    echo "# Written by deploy/dev/env-up.sh (SESSIONCTL_HOSTS=$HOSTS): apply with sessionctl apply -f"
    for ((i = 0; i < HOSTS; i++)); do
      hport=$((PORT + i))
      hname=$(awk -v endpoint="tcp://127.0.0.1:$hport" '$1 == endpoint { print $2; exit }' <<<"$registered")
      cat <<YAML
---
apiVersion: sessionctl.dev/v1alpha1
kind: DockerHost
metadata:
  name: ${hname:-dev-$hport}
  labels:
    sessionctl.dev/dev-port: "$hport"
spec:
  endpoint: tcp://127.0.0.1:$hport
  certDir: $STATE/certs
  advertiseAddress: 127.0.0.1
YAML
    done
  } >"$manifest.tmp"
  mv -f "$manifest.tmp" "$manifest"
}

registered_hosts() {
  cd "$REPO" && DATABASE_URL=$DB_URL node bin/sessionctl.js get hosts -o json |
    node -e 'let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
      for (const h of s.trim() ? JSON.parse(s).items : []) console.log(`${h.spec.endpoint} ${h.metadata.name}`);
    })'
}

if ((HOSTS > 1)); then
  manifest=$STATE/hosts.yaml
  # Applied once per set of daemons, database and set of migrations (three CLI runs cost about a
  # second, paid by every `npm test`); a stamp remembers what was applied.
  stamp=$STATE/hosts.applied
  applied=$(cat "$REPO"/src/store/migrations/*.sql 2>/dev/null | { cat; echo "$DB_URL $HOSTS $PORT $STATE"; } | sha256sum | cut -c1-64)
  if [[ -f $REPO/dist/src/cli/main.js && -f $manifest && $(cat "$stamp" 2>/dev/null) == "$applied" ]]; then
    echo "hosts: $manifest already applied"
  elif [[ -f $REPO/dist/src/cli/main.js ]]; then
    (cd "$REPO" && DATABASE_URL=$DB_URL node bin/sessionctl.js migrate >/dev/null) || fail "migrating $DB_URL"
    registered=$(registered_hosts) || fail "listing the hosts registered in $DB_URL"
    write_hosts_manifest "$registered"
    (cd "$REPO" && DATABASE_URL=$DB_URL node bin/sessionctl.js apply -f "$manifest") ||
      fail "registering the hosts of $manifest"
    echo "$applied" >"$stamp"
  else
    write_hosts_manifest ""
    echo "env-up: dist/ is not built (npm run build); register the hosts with: sessionctl apply -f $manifest"
  fi
fi

# --- 8. summary --------------------------------------------------------------
ms=$((($(date +%s%N) - T0) / 1000000))
cat <<EOF

sessionctl dev environment is up ($((ms / 1000)).$(printf '%03d' $((ms % 1000)))s)
  docker:   tcp://127.0.0.1:$PORT$( ((HOSTS > 1)) && echo " .. $((PORT + HOSTS - 1)) ($HOSTS hosts, $STATE/hosts.yaml)") (mutual TLS, certs in $STATE/certs)
  image:    ${SESSIONCTL_BASE_IMAGE:-sessionctl/base:dev}
  database: $DB_URL
  env file: . $ENVFILE
EOF
