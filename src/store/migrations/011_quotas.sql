-- Ceilings and per-owner quotas, enforced where rows are counted: in the database, in the writer's
-- own transaction, so that concurrent creates cannot all slip under a limit.
--
--   sessions_spec_size, sessions_env_entries
--               hard ceilings (crds/limits.ts holds the same numbers): a spec past them can never
--               be valid. NOT VALID: rows written before this migration are left alone (and the
--               controller reports them as InvalidSpec); every new write is checked.
--   owner_quotas
--               per-owner limits the admin manages: how many sessions, and how much memory their
--               specs ask for in total. The row of owner '*' applies to owners without a row of
--               their own; no row at all means unlimited. A session whose spec sets no memory counts
--               as unset_memory_bytes (the controller's SESSIONCTL_DEFAULT_MEMORY, 4 GiB by default).

ALTER TABLE sessionctl.sessions
  ADD CONSTRAINT sessions_spec_size CHECK (octet_length(spec::text) <= 262144) NOT VALID;

CREATE FUNCTION sessionctl.jsonb_key_count(value jsonb) RETURNS integer
  LANGUAGE sql IMMUTABLE
  SET search_path = pg_catalog, pg_temp
AS $$
  SELECT CASE WHEN pg_catalog.jsonb_typeof(value) = 'object' THEN (SELECT count(*)::integer FROM pg_catalog.jsonb_object_keys(value)) ELSE 0 END
$$;

ALTER TABLE sessionctl.sessions
  ADD CONSTRAINT sessions_env_entries CHECK (sessionctl.jsonb_key_count(spec -> 'env') <= 1024) NOT VALID;

-- Memory as crds/quantity.ts reads it: binary units whatever their spelling. NULL when not a quantity
-- (the controller refuses such a spec as InvalidSpec; it runs nothing, so it uses no memory quota).
CREATE FUNCTION sessionctl.memory_bytes(quantity text) RETURNS numeric
  LANGUAGE sql IMMUTABLE
  SET search_path = pg_catalog, pg_temp
AS $$
  SELECT floor(m[1]::numeric * CASE pg_catalog.lower(m[2])
      WHEN '' THEN 1 WHEN 'b' THEN 1
      WHEN 'k' THEN 1024 WHEN 'ki' THEN 1024 WHEN 'kb' THEN 1024
      WHEN 'm' THEN 1048576 WHEN 'mi' THEN 1048576 WHEN 'mb' THEN 1048576
      WHEN 'g' THEN 1073741824 WHEN 'gi' THEN 1073741824 WHEN 'gb' THEN 1073741824
      WHEN 't' THEN 1099511627776 WHEN 'ti' THEN 1099511627776 WHEN 'tb' THEN 1099511627776
    END)
  FROM (SELECT pg_catalog.regexp_match(pg_catalog.btrim(quantity), '^(\d+(?:\.\d+)?)\s*([a-zA-Z]{0,2})$') AS m) parsed
$$;

CREATE TABLE sessionctl.owner_quotas (
  owner              text PRIMARY KEY,
  max_sessions       integer CHECK (max_sessions >= 0),
  max_memory_bytes   bigint CHECK (max_memory_bytes >= 0),
  unset_memory_bytes bigint NOT NULL DEFAULT 4294967296 CHECK (unset_memory_bytes >= 0)
);

-- SECURITY DEFINER: a writer sees only its own rows and no quotas, but the count must cover every
-- row of the owner. The search_path is pinned and every name qualified, as for every function here.
CREATE FUNCTION sessionctl.sessions_enforce_quota() RETURNS trigger
  LANGUAGE plpgsql SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  quota          sessionctl.owner_quotas;
  used_sessions  bigint;
  used_memory    numeric;
  asked_memory   numeric;
BEGIN
  -- Re-applying the same spec never fails, even for an owner over a quota that was lowered since.
  IF TG_OP = 'UPDATE' AND NEW.spec IS NOT DISTINCT FROM OLD.spec THEN
    RETURN NEW;
  END IF;
  SELECT * INTO quota FROM sessionctl.owner_quotas q WHERE q.owner IN (NEW.owner, '*') ORDER BY q.owner = '*' LIMIT 1;
  IF NOT FOUND OR (quota.max_sessions IS NULL AND quota.max_memory_bytes IS NULL) THEN
    RETURN NEW;
  END IF;
  -- One write per owner at a time: the second of two concurrent creates counts the first.
  PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('sessionctl.owner_quota'), pg_catalog.hashtext(NEW.owner));
  SELECT count(*), coalesce(sum(coalesce(sessionctl.memory_bytes(s.spec -> 'resources' ->> 'memory'), CASE WHEN s.spec -> 'resources' -> 'memory' IS NULL THEN quota.unset_memory_bytes ELSE 0 END)), 0)
    INTO used_sessions, used_memory
    FROM sessionctl.sessions s WHERE s.owner = NEW.owner AND s.name <> NEW.name;
  IF TG_OP = 'INSERT' AND quota.max_sessions IS NOT NULL AND used_sessions >= quota.max_sessions THEN
    RAISE EXCEPTION 'owner % already has % sessions, its quota allows %', NEW.owner, used_sessions, quota.max_sessions
      USING ERRCODE = 'configuration_limit_exceeded',
            HINT = 'Delete a session first, or ask an admin to raise max_sessions in sessionctl.owner_quotas.';
  END IF;
  asked_memory := coalesce(sessionctl.memory_bytes(NEW.spec -> 'resources' ->> 'memory'),
                           CASE WHEN NEW.spec -> 'resources' -> 'memory' IS NULL THEN quota.unset_memory_bytes ELSE 0 END);
  IF quota.max_memory_bytes IS NOT NULL AND used_memory + asked_memory > quota.max_memory_bytes THEN
    RAISE EXCEPTION 'spec.resources.memory: owner % would use % bytes of memory, its quota allows %', NEW.owner, used_memory + asked_memory, quota.max_memory_bytes
      USING ERRCODE = 'configuration_limit_exceeded',
            HINT = 'Ask for less memory, delete a session, or ask an admin to raise max_memory_bytes in sessionctl.owner_quotas.';
  END IF;
  RETURN NEW;
END $$;

-- Runs after the bookkeeping triggers (triggers fire in name order: sessions_before_* < sessions_quota).
CREATE TRIGGER sessions_quota BEFORE INSERT OR UPDATE OF spec ON sessionctl.sessions
  FOR EACH ROW EXECUTE FUNCTION sessionctl.sessions_enforce_quota();

DO $grants$
DECLARE
  controller text := coalesce(nullif(current_setting('sessionctl.controller_role', true), ''), 'sessionctl_controller');
  admin      text := coalesce(nullif(current_setting('sessionctl.admin_role', true), ''), 'sessionctl_admin');
BEGIN
  EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON sessionctl.owner_quotas TO %I', admin);
  EXECUTE format('GRANT SELECT ON sessionctl.owner_quotas TO %I', controller);
END $grants$;
