#!/usr/bin/env bash
# Runs once, when compose's PostgreSQL initialises an empty data directory (docker-entrypoint-initdb.d):
# the login users the controller and other services connect as, each a member of one group role only.
# The group roles are created here with the names migration 003/009 use, which then reuse them; the
# owner (POSTGRES_USER) runs migrations (compose's `migrate` service) and nothing else.
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v controller_password="$SESSIONCTL_CONTROLLER_DB_PASSWORD" \
  -v writer_password="$SESSIONCTL_WRITER_DB_PASSWORD" <<'SQL'
CREATE ROLE sessionctl_controller NOLOGIN;
CREATE ROLE sessionctl_writer NOLOGIN;
CREATE ROLE sessionctl_admin NOLOGIN;
CREATE ROLE sessionctl_controller_login LOGIN PASSWORD :'controller_password' IN ROLE sessionctl_controller;
-- One login user per service that writes sessions: row-level security keeps each to its own rows.
CREATE ROLE sessionctl_writer_login LOGIN PASSWORD :'writer_password' IN ROLE sessionctl_writer;
SQL
