#!/usr/bin/env bash
# `npm run dev`, the README's main command: bring up the real environment (mTLS dockerd, base image,
# embedded PostgreSQL), apply the example sessions, and run the controller in the foreground.
# Ctrl-C stops the controller; the session containers keep running (env:down stops everything).
set -euo pipefail
# shellcheck source=/dev/null
. "$(dirname "${BASH_SOURCE[0]}")/prepare.sh"
node bin/sessionctl.js migrate
node bin/sessionctl.js apply -f crds/examples/
echo "controller starting; metrics on http://${SESSIONCTL_METRICS_ADDR:-127.0.0.1:9464}/metrics"
exec node bin/sessionctl.js controller
