#!/usr/bin/env bash
# The README's test command (`npm test`): builds, brings up the real environment (mTLS dockerd and
# PostgreSQL, installed with apt on a fresh Debian machine), then runs unit, integration and e2e tests.
# Extra arguments go to jest, e.g. `npm test -- test/integration/store.test.ts`.
set -euo pipefail
# Three mutual-TLS dockerds for the fleet tests (test/integration/fleet-*.test.ts); the other files use
# only the first (DOCKER_HOST). `npm run env:up` and `npm run dev` stay at one daemon.
export SESSIONCTL_HOSTS=${SESSIONCTL_HOSTS:-3}
# shellcheck source=/dev/null
. "$(dirname "${BASH_SOURCE[0]}")/../deploy/dev/prepare.sh"

# One shared daemon: test files run one after another, each cleaning up its containers.
results=$(mktemp --suffix=.json)
trap 'rm -f "$results"' EXIT
code=0
npx jest --runInBand --json --outputFile="$results" "$@" || code=$?
# A plain closing line that any CI reader understands.
node -e 'const r = JSON.parse(require("node:fs").readFileSync(process.argv[1], "utf8")); console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed`)' "$results" || true
exit "$code"
