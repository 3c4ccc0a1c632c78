-- Registry credentials the operator manages with `sessionctl registry login|logout|list`, looked up
-- by registry host (`127.0.0.1:5000`, `docker.io`). The controller only reads them: it sends them to
-- the daemon as X-Registry-Auth on a pull and to the registry's token endpoint, nowhere else.
-- Writers (other services) get no access at all. Only the schema owner (the role that runs
-- migrations) may change them.
CREATE TABLE sessionctl.registry_credentials (
  registry   text PRIMARY KEY CHECK (registry ~ '^[a-z0-9]([-a-z0-9.]*[a-z0-9])?(:[0-9]{1,5})?$'),
  username   text NOT NULL CHECK (username <> ''),
  password   text NOT NULL CHECK (password <> ''),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

DO $grants$
DECLARE
  controller text := coalesce(nullif(current_setting('sessionctl.controller_role', true), ''), 'sessionctl_controller');
BEGIN
  EXECUTE format('GRANT SELECT ON sessionctl.registry_credentials TO %I', controller);
END $grants$;
