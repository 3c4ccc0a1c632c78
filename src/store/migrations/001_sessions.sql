-- The desired-state table other services write, and the triggers that make its contract hold
-- whoever writes: generation moves only on a real spec change, NOTIFY fires only then, and a
-- DELETE of a row that still owns a container becomes a graceful deletion.

CREATE TABLE sessionctl.sessions (
  name                  text PRIMARY KEY
                        CONSTRAINT sessions_name_is_dns_label CHECK (name ~ '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$'),
  uid                   uuid NOT NULL DEFAULT gen_random_uuid(),
  labels                jsonb NOT NULL DEFAULT '{}'::jsonb
                        CONSTRAINT sessions_labels_is_object CHECK (jsonb_typeof(labels) = 'object'),
  spec                  jsonb NOT NULL
                        CONSTRAINT sessions_spec_is_object CHECK (jsonb_typeof(spec) = 'object'),
  generation            bigint NOT NULL DEFAULT 1,
  resource_version      bigint NOT NULL DEFAULT 1,
  created_at            timestamptz NOT NULL DEFAULT now(),
  updated_at            timestamptz NOT NULL DEFAULT now(),
  -- when the current generation was written: the start of the session_ready_seconds SLI
  generation_changed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  deletion_requested_at timestamptz,
  finalizers            text[] NOT NULL DEFAULT '{}',
  status                jsonb NOT NULL DEFAULT '{}'::jsonb,
  host                  text,
  last_activity_at      timestamptz
);

-- The controller's safety poll looks only at rows it has not yet observed.
CREATE INDEX sessions_unobserved ON sessionctl.sessions (name)
  WHERE coalesce((status ->> 'observedGeneration')::bigint, 0) < generation;

CREATE FUNCTION sessionctl.sessions_before_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  -- Bookkeeping columns belong to the database and the controller, whatever the writer sent.
  NEW.uid := gen_random_uuid();
  NEW.generation := 1;
  NEW.resource_version := 1;
  NEW.created_at := now();
  NEW.updated_at := now();
  NEW.generation_changed_at := clock_timestamp();
  NEW.deletion_requested_at := NULL;
  NEW.finalizers := '{}';
  NEW.status := '{}'::jsonb;
  RETURN NEW;
END $$;

CREATE FUNCTION sessionctl.sessions_before_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.uid := OLD.uid;
  NEW.created_at := OLD.created_at;
  -- A deletion, once requested, cannot be taken back by a later upsert.
  NEW.deletion_requested_at := coalesce(OLD.deletion_requested_at, NEW.deletion_requested_at);
  -- jsonb equality ignores key order and whitespace, so only a real change moves the generation.
  IF NEW.spec IS DISTINCT FROM OLD.spec
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

CREATE FUNCTION sessionctl.sessions_before_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF cardinality(OLD.finalizers) = 0 THEN
    RETURN OLD;
  END IF;
  -- The row still owns a container: record the wish and let the controller finish the job.
  IF OLD.deletion_requested_at IS NULL THEN
    UPDATE sessionctl.sessions SET deletion_requested_at = now() WHERE name = OLD.name;
  END IF;
  RETURN NULL;
END $$;

CREATE FUNCTION sessionctl.sessions_notify() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  row_name text;
  row_generation bigint;
BEGIN
  IF TG_OP = 'DELETE' THEN
    row_name := OLD.name;
    row_generation := OLD.generation;
  ELSIF TG_OP = 'UPDATE' AND NEW.generation = OLD.generation THEN
    -- Status, finalizer and label writes never wake the controller: no hot loop on its own writes.
    RETURN NULL;
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

CREATE TRIGGER sessions_before_insert BEFORE INSERT ON sessionctl.sessions
  FOR EACH ROW EXECUTE FUNCTION sessionctl.sessions_before_insert();
CREATE TRIGGER sessions_before_update BEFORE UPDATE ON sessionctl.sessions
  FOR EACH ROW EXECUTE FUNCTION sessionctl.sessions_before_update();
CREATE TRIGGER sessions_before_delete BEFORE DELETE ON sessionctl.sessions
  FOR EACH ROW EXECUTE FUNCTION sessionctl.sessions_before_delete();
CREATE TRIGGER sessions_notify AFTER INSERT OR UPDATE OR DELETE ON sessionctl.sessions
  FOR EACH ROW EXECUTE FUNCTION sessionctl.sessions_notify();
