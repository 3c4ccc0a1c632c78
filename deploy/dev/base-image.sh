#!/usr/bin/env bash
# Build sessionctl/base:dev FROM scratch out of the host's static busybox.
#
#   deploy/dev/base-image.sh [--force]
#
# Talks to the development dockerd (deploy/dev/dockerd.sh) over mutual TLS.
# Idempotent: the image carries a label with the sha256 of the Dockerfile and the
# busybox binary; when the image exists with the same digest nothing is rebuilt.
# After a build it checks that `docker run --rm sessionctl/base:dev echo hi` prints hi.
#
# Environment: SESSIONCTL_STATE_DIR, SESSIONCTL_DOCKER_PORT (as dockerd.sh),
#              SESSIONCTL_BASE_IMAGE (default sessionctl/base:dev).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
STATE=${SESSIONCTL_STATE_DIR:-$REPO/.sessionctl}
CERTS=$STATE/certs
PORT=${SESSIONCTL_DOCKER_PORT:-2376}
IMAGE=${SESSIONCTL_BASE_IMAGE:-sessionctl/base:dev}
DOCKERFILE=$REPO/deploy/images/base/Dockerfile
FORCE=${1:-}

export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH
if [[ -x /usr/bin/docker ]]; then DOCKER_BIN=/usr/bin/docker; else DOCKER_BIN=$(command -v docker || true); fi

die() { echo "base-image: ERROR: $*" >&2; exit 1; }
[[ -n $DOCKER_BIN ]] || die "docker CLI not found (apt-get install docker.io)"

docker_cli() {
  # The classic builder: BuildKit would want to pull its frontend/ helper images,
  # and no registry is reachable. (CLI v23+ prints a deprecation note; harmless.)
  DOCKER_BUILDKIT=0 "$DOCKER_BIN" --tlsverify --tlscacert "$CERTS/ca.pem" --tlscert "$CERTS/cert.pem" \
    --tlskey "$CERTS/key.pem" -H "tcp://127.0.0.1:$PORT" "$@"
}

# The static busybox: Debian's busybox-static puts it at /bin/busybox. A dynamic
# one would not run in a FROM-scratch image (no libc there).
BUSYBOX=$(command -v busybox || true)
[[ -n $BUSYBOX ]] || die "busybox not found (apt-get install busybox-static)"
BUSYBOX=$(readlink -f "$BUSYBOX")
if ldd "$BUSYBOX" >/dev/null 2>&1; then
  die "$BUSYBOX is dynamically linked; install the static one: apt-get install busybox-static"
fi
[[ -f $DOCKERFILE ]] || die "missing $DOCKERFILE"

DIGEST=$(cat "$DOCKERFILE" "$BUSYBOX" | sha256sum | cut -c1-64)

current=$(docker_cli image inspect --format '{{ index .Config.Labels "io.sessionctl.base.digest" }}' "$IMAGE" 2>/dev/null || true)
if [[ $FORCE != --force && $current == "$DIGEST" ]]; then
  echo "base-image: $IMAGE is up to date"
  exit 0
fi

CTX=$(mktemp -d /tmp/sctl-base-ctx.XXXXXX)
trap 'rm -rf "$CTX"' EXIT
cp "$DOCKERFILE" "$CTX/Dockerfile"
cp "$BUSYBOX" "$CTX/busybox"
chmod 0755 "$CTX/busybox"

echo "base-image: building $IMAGE (digest ${DIGEST:0:12})"
# --network none: the RUN steps need nothing from outside. --force-rm: no
# leftover intermediate containers if a step fails.
if ! out=$(docker_cli build --network none --force-rm --build-arg "BASE_DIGEST=$DIGEST" -t "$IMAGE" "$CTX" 2>&1); then
  echo "$out" >&2
  die "docker build failed"
fi
# Dangling layers of the previous build of this tag are of no use.
docker_cli image prune -f --filter "label=io.sessionctl.base.digest" >/dev/null 2>&1 || true

got=$(docker_cli run --rm --network none "$IMAGE" echo hi 2>&1) || true
[[ $got == hi ]] || die "image check failed: 'docker run --rm $IMAGE echo hi' printed: $got"
echo "base-image: built $IMAGE ($(docker_cli image inspect --format '{{.Id}}' "$IMAGE" | cut -c1-19)), 'echo hi' ok"
