-- Owners and row-level security: every session row records the database role that created it, and
-- a writer sees and changes only the sessions of roles it is (a member of), with their tokens and
-- events. An admin group role sees and changes all of them, and may hand a row to another owner;
-- the controller sees all (it reconciles every row).
--
--   owner       current_user at INSERT (a writer cannot name the column: no INSERT privilege on it).
--               Rows that existed before this migration belong to the writer group role, so every
--               writer keeps them as before until an admin reassigns them:
--                 UPDATE sessionctl.sessions SET owner = 'svc_billing' WHERE labels->>'team' = 'billing';
--   visibility  sessionctl.may_act_for(owner): owner is current_user, or a role current_user is a
--               member of (a team can share a group role). A dropped owner role matches no one.
--
-- Session names stay one namespace: an upsert of a name another writer owns fails with
-- "new row violates row-level security policy" instead of taking the row over.
-- The table owner (who runs migrations) and superusers bypass row-level security, as always.

ALTER TABLE sessionctl.sessions ADD COLUMN owner text;

DO $owners$
DECLARE
  writer text := coalesce(nullif(current_setting('sessionctl.writer_role', true), ''), 'sessionctl_writer');
BEGIN
  UPDATE sessionctl.sessions SET owner = writer WHERE owner IS NULL;
END $owners$;

ALTER TABLE sessionctl.sessions
  ALTER COLUMN owner SET DEFAULT current_user,
  ALTER COLUMN owner SET NOT NULL;

CREATE INDEX sessions_by_owner ON sessionctl.sessions (owner);

CREATE FUNCTION sessionctl.may_act_for(owner text) RETURNS boolean
  LANGUAGE sql STABLE
  SET search_path = pg_catalog, pg_temp
AS $$
  SELECT owner = current_user
      OR EXISTS (SELECT 1 FROM pg_catalog.pg_roles r
                  WHERE r.rolname = owner AND pg_catalog.pg_has_role(current_user, r.oid, 'MEMBER'))
$$;

ALTER TABLE sessionctl.sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE sessionctl.session_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE sessionctl.events ENABLE ROW LEVEL SECURITY;

DO $policies$
DECLARE
  writer     text := coalesce(nullif(current_setting('sessionctl.writer_role', true), ''), 'sessionctl_writer');
  controller text := coalesce(nullif(current_setting('sessionctl.controller_role', true), ''), 'sessionctl_controller');
  admin      text := coalesce(nullif(current_setting('sessionctl.admin_role', true), ''), 'sessionctl_admin');
BEGIN
  IF admin IN (writer, controller) THEN
    RAISE EXCEPTION 'the admin role must differ from the writer and controller roles, it is %', admin
      USING HINT = 'Set SESSIONCTL_ADMIN_ROLE to a name of its own.';
  END IF;
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = admin) THEN
    BEGIN
      EXECUTE format('CREATE ROLE %I NOLOGIN', admin);
    EXCEPTION WHEN duplicate_object OR unique_violation THEN
      NULL; -- another database of the cluster created it at the same moment (see 003)
    END;
  END IF;

  -- The admin: the writer's contract on every row, plus reassigning owners.
  EXECUTE format('GRANT USAGE ON SCHEMA sessionctl TO %I', admin);
  EXECUTE format('GRANT SELECT ON sessionctl.schema_migrations TO %I', admin);
  EXECUTE format('GRANT SELECT, DELETE ON sessionctl.sessions TO %I', admin);
  EXECUTE format('GRANT INSERT (name, labels, spec, last_activity_at, owner) ON sessionctl.sessions TO %I', admin);
  EXECUTE format('GRANT UPDATE (spec, labels, deletion_requested_at, last_activity_at, restart_requested_at, owner) ON sessionctl.sessions TO %I', admin);
  EXECUTE format('GRANT SELECT ON sessionctl.events TO %I', admin);
  EXECUTE format('GRANT SELECT, DELETE ON sessionctl.session_tokens TO %I', admin);

  EXECUTE format('CREATE POLICY sessions_own ON sessionctl.sessions TO %I USING (sessionctl.may_act_for(owner)) WITH CHECK (sessionctl.may_act_for(owner))', writer);
  EXECUTE format('CREATE POLICY sessions_all ON sessionctl.sessions TO %I, %I USING (true) WITH CHECK (true)', controller, admin);

  -- A token or an event is the writer's when its session row is visible to it, with the same uid:
  -- a row re-created under the same name by another owner does not inherit the old row's history.
  EXECUTE format($sql$CREATE POLICY session_tokens_own ON sessionctl.session_tokens TO %I
    USING (EXISTS (SELECT 1 FROM sessionctl.sessions s WHERE s.name = session_name AND s.uid = session_uid))$sql$, writer);
  EXECUTE format('CREATE POLICY session_tokens_all ON sessionctl.session_tokens TO %I, %I USING (true) WITH CHECK (true)', controller, admin);

  EXECUTE format($sql$CREATE POLICY events_own ON sessionctl.events FOR SELECT TO %I
    USING (EXISTS (SELECT 1 FROM sessionctl.sessions s WHERE s.name = session_name AND s.uid = session_uid))$sql$, writer);
  EXECUTE format('CREATE POLICY events_all ON sessionctl.events TO %I, %I USING (true) WITH CHECK (true)', controller, admin);
END $policies$;
