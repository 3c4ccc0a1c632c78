#!/usr/bin/env bash
# `npm run bench`: build, bring up the dev environment (mTLS dockerd + PostgreSQL), then run the
# side-by-side benchmark. Extra arguments go to converge.js, e.g. `npm run bench -- --n 50 --idle-seconds 30`.
# Do not run it at the same time as the test suite (both remove managed containers they do not own);
# it refuses to start while a sessionctl controller or jest is running unless given --force.
set -euo pipefail
# shellcheck source=/dev/null
. "$(dirname "${BASH_SOURCE[0]}")/../../deploy/dev/prepare.sh"
exec node dist/test/bench/converge.js "$@"
