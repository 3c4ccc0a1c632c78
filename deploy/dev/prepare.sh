# Sourced (not run) by `npm run dev`, `npm test` and `npm run bench`: from the repository root,
# install dependencies if missing, build, bring up the environment, and export its variables.
# shellcheck shell=bash
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
[ -d node_modules ] || npm ci
npx tsc -p tsconfig.json
bash deploy/dev/env-up.sh
# shellcheck disable=SC1091
. "${SESSIONCTL_STATE_DIR:-$PWD/.sessionctl}/env"
