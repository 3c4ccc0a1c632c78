-- The SQL contract, enforced by the database rather than by convention: two NOLOGIN group roles
-- that deployments GRANT to their login users.
--
--   writer      other services: read sessions and events, insert/upsert and delete sessions, and
--               update only spec, labels, deletion_requested_at and last_activity_at. Never status,
--               finalizers, generation, uid, host or the other bookkeeping columns.
--   controller  the controller: read and write every column of sessions, and the events table.
--
-- Neither role may run migrations: they run as the schema owner or a superuser.
--
-- The names come from the settings sessionctl.writer_role and sessionctl.controller_role, which
-- migrate() sets for its session (SESSIONCTL_WRITER_ROLE, SESSIONCTL_CONTROLLER_ROLE). Roles are
-- cluster-wide: a role that already exists (say, created by the migration of another database) is
-- reused. GRANTs are per database.
--
-- Column privileges are checked on the columns a statement names, not on what BEFORE triggers assign
-- to NEW, so the bookkeeping triggers keep working for the writer; and the BEFORE DELETE trigger's
-- own UPDATE of deletion_requested_at runs as the writer, which may update that column.

DO $roles$
DECLARE
  writer     text := coalesce(nullif(current_setting('sessionctl.writer_role', true), ''), 'sessionctl_writer');
  controller text := coalesce(nullif(current_setting('sessionctl.controller_role', true), ''), 'sessionctl_controller');
  member     text;
BEGIN
  IF writer = controller THEN
    RAISE EXCEPTION 'the writer and controller roles must differ, both are %', writer
      USING HINT = 'Set SESSIONCTL_WRITER_ROLE and SESSIONCTL_CONTROLLER_ROLE to two different names.';
  END IF;

  FOREACH member IN ARRAY ARRAY[writer, controller] LOOP
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = member) THEN
      BEGIN
        EXECUTE format('CREATE ROLE %I NOLOGIN', member);
      EXCEPTION WHEN duplicate_object OR unique_violation THEN
        -- Another database of the same cluster created it at the same moment (the migration advisory
        -- lock is per database): the role exists now, which is all we need.
        NULL;
      END;
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA sessionctl TO %I', member);
    -- So that migrate() can see there is nothing to do without needing DDL privileges.
    EXECUTE format('GRANT SELECT ON sessionctl.schema_migrations TO %I', member);
    -- What the triggers call. Both are executable by PUBLIC unless a deployment revoked that.
    IF NOT has_function_privilege(member, 'pg_catalog.gen_random_uuid()', 'EXECUTE') THEN
      EXECUTE format('GRANT EXECUTE ON FUNCTION pg_catalog.gen_random_uuid() TO %I', member);
    END IF;
    IF NOT has_function_privilege(member, 'pg_catalog.pg_notify(text, text)', 'EXECUTE') THEN
      EXECUTE format('GRANT EXECUTE ON FUNCTION pg_catalog.pg_notify(text, text) TO %I', member);
    END IF;
  END LOOP;

  -- The writer. INSERT is limited to the columns a writer means to set: the BEFORE INSERT trigger
  -- resets uid, generation, status, finalizers and the timestamps anyway, but not host.
  EXECUTE format('GRANT SELECT, DELETE ON sessionctl.sessions TO %I', writer);
  EXECUTE format('GRANT INSERT (name, labels, spec, last_activity_at) ON sessionctl.sessions TO %I', writer);
  EXECUTE format('GRANT UPDATE (spec, labels, deletion_requested_at, last_activity_at) ON sessionctl.sessions TO %I', writer);
  EXECUTE format('GRANT SELECT ON sessionctl.events TO %I', writer);

  -- The controller. Not TRUNCATE, REFERENCES or TRIGGER: it never needs them.
  EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON sessionctl.sessions TO %I', controller);
  EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON sessionctl.events TO %I', controller);
  EXECUTE format('GRANT USAGE, SELECT, UPDATE ON SEQUENCE %s TO %I',
                 pg_get_serial_sequence('sessionctl.events', 'id'), controller);
END $roles$;

-- Label values are strings (labels are a string map everywhere: the zod schema, the TypeScript
-- types, label selectors). A number, boolean, null, array or object can never become a valid label
-- value, and unlike the spec nothing would report it: the controller validates the spec, not labels,
-- and a selector compares `labels ->> key` as text, so {"tier": 1} would match tier=1 in SQL but not
-- in a watch stream. Like the name and "is an object" checks in 001, this refuses only rows that can
-- never be valid; everything about the spec's content is the controller's to report (InvalidSpec).
ALTER TABLE sessionctl.sessions
  ADD CONSTRAINT sessions_label_values_are_strings
  -- strict: lax mode would unwrap arrays, letting {"tier": ["a"]} and {"tier": []} through.
  CHECK (NOT jsonb_path_exists(labels, 'strict $.* ? (@.type() != "string")'));
