-- The installation: one id per sessionctl database, made once by this migration. Every container
-- and volume the controller creates carries it as a label, so that two installations sharing one
-- Docker daemon (two databases, a staging and a production controller) never take each other's
-- containers for orphans. The single row cannot be changed or deleted by the controller or writers.
CREATE TABLE sessionctl.installation (
  id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  singleton  boolean NOT NULL DEFAULT true UNIQUE CHECK (singleton),
  created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO sessionctl.installation DEFAULT VALUES;

DO $grants$
DECLARE
  controller text := coalesce(nullif(current_setting('sessionctl.controller_role', true), ''), 'sessionctl_controller');
  writer text := coalesce(nullif(current_setting('sessionctl.writer_role', true), ''), 'sessionctl_writer');
BEGIN
  EXECUTE format('GRANT SELECT ON sessionctl.installation TO %I', controller);
  EXECUTE format('GRANT SELECT ON sessionctl.installation TO %I', writer);
END $grants$;
