-- Runtime semantics: `sessionctl restart` (restart_requested_at), per-session access tokens, and
-- the wake-ups they and idle sessions need. Still: status writes never wake the controller.

ALTER TABLE sessionctl.sessions ADD COLUMN restart_requested_at timestamptz;

CREATE OR REPLACE FUNCTION sessionctl.sessions_before_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.uid := gen_random_uuid();
  NEW.generation := 1;
  NEW.resource_version := 1;
  NEW.created_at := now();
  NEW.updated_at := now();
  NEW.generation_changed_at := clock_timestamp();
  NEW.deletion_requested_at := NULL;
  NEW.restart_requested_at := NULL;
  NEW.finalizers := '{}';
  NEW.status := '{}'::jsonb;
  RETURN NEW;
END $$;

-- A restart request is a new desired revision of the container, as kubectl's rollout restart is a
-- template change: it moves the generation, which wakes the controller and resets the restart budget.
CREATE OR REPLACE FUNCTION sessionctl.sessions_before_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.uid := OLD.uid;
  NEW.created_at := OLD.created_at;
  NEW.deletion_requested_at := coalesce(OLD.deletion_requested_at, NEW.deletion_requested_at);
  IF NEW.spec IS DISTINCT FROM OLD.spec
     OR NEW.restart_requested_at IS DISTINCT FROM OLD.restart_requested_at
     OR (NEW.deletion_requested_at IS NOT NULL AND OLD.deletion_requested_at IS NULL) THEN
    NEW.generation := OLD.generation + 1;
    NEW.generation_changed_at := clock_timestamp();
  ELSE
    NEW.generation := OLD.generation;
    NEW.generation_changed_at := OLD.generation_changed_at;
  END IF;
  NEW.resource_version := OLD.resource_version + 1;
  NEW.updated_at := now();
  RETURN NEW;
END $$;

-- Activity on a session that idled out brings it back: only then does a touch wake the controller.
-- Any other touch is cheap; the controller's idle timer re-reads last_activity_at when it fires.
CREATE OR REPLACE FUNCTION sessionctl.sessions_notify() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  row_name text;
  row_generation bigint;
BEGIN
  IF TG_OP = 'DELETE' THEN
    row_name := OLD.name;
    row_generation := OLD.generation;
  ELSIF TG_OP = 'UPDATE' AND NEW.generation = OLD.generation THEN
    IF NEW.last_activity_at IS DISTINCT FROM OLD.last_activity_at
       AND jsonb_path_exists(NEW.status, '$.conditions[*] ? (@.type == "Ready" && @.reason == "IdleTimeout")') THEN
      row_name := NEW.name;
      row_generation := NEW.generation;
    ELSE
      RETURN NULL;
    END IF;
  ELSE
    row_name := NEW.name;
    row_generation := NEW.generation;
  END IF;
  PERFORM pg_notify('sessionctl_sessions', json_build_object(
    'name', row_name,
    'generation', row_generation,
    'at', extract(epoch FROM clock_timestamp()))::text);
  RETURN NULL;
END $$;

-- Access tokens. The plaintext lives here and only here: never in spec, status or events, which
-- every reader sees. Writers may read a token (to hand it to the user's proxy) and delete it, which
-- asks for a rotation; only the controller mints. token_sha256 lets a proxy check a presented token
-- without comparing plaintexts.
CREATE TABLE sessionctl.session_tokens (
  session_name text PRIMARY KEY REFERENCES sessionctl.sessions (name) ON DELETE CASCADE,
  session_uid  uuid NOT NULL,
  token_id     uuid NOT NULL,
  token        text NOT NULL,
  token_sha256 text NOT NULL UNIQUE,
  created_at   timestamptz NOT NULL DEFAULT now(),
  expires_at   timestamptz NOT NULL
);

CREATE FUNCTION sessionctl.session_tokens_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('sessionctl_sessions', json_build_object(
    'name', OLD.session_name, 'at', extract(epoch FROM clock_timestamp()))::text);
  RETURN NULL;
END $$;

-- A deleted token is a rotation request (`sessionctl rotate-token`). The controller's own rotations
-- are UPDATEs and wake nothing.
CREATE TRIGGER session_tokens_notify AFTER DELETE ON sessionctl.session_tokens
  FOR EACH ROW EXECUTE FUNCTION sessionctl.session_tokens_notify();

DO $grants$
DECLARE
  writer     text := coalesce(nullif(current_setting('sessionctl.writer_role', true), ''), 'sessionctl_writer');
  controller text := coalesce(nullif(current_setting('sessionctl.controller_role', true), ''), 'sessionctl_controller');
BEGIN
  EXECUTE format('GRANT UPDATE (restart_requested_at) ON sessionctl.sessions TO %I', writer);
  EXECUTE format('GRANT SELECT, DELETE ON sessionctl.session_tokens TO %I', writer);
  EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON sessionctl.session_tokens TO %I', controller);
END $grants$;
