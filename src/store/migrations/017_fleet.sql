-- The fleet at run time: which controller replicas are alive (so hosts are shared out evenly), and
-- moving a session off its host (drain) without ever running two copies.
--
--   controller_replicas  one row per running controller process, heartbeat from the database's
--                        clock like a lease: live while expires_at > now(). A clean shutdown deletes
--                        its row; a killed replica's row simply expires.
--   evict_requested_at   set by `sessionctl drain` (admin): the leaseholder of the session's placed
--   evict_reason         host removes its container, and only then takes the session off the host,
--                        so that it is placed again elsewhere: the old copy is gone before a new one
--                        can start. Cleared when the session is placed again.
--
-- The controller's wake-up channel (sessionctl_sessions) now also fires when placement or an
-- eviction request changes, and names the placed host, so that each replica queues a session only on
-- the host it holds.

CREATE TABLE sessionctl.controller_replicas (
  holder        text PRIMARY KEY,
  started_at    timestamptz NOT NULL DEFAULT now(),
  heartbeat_at  timestamptz NOT NULL DEFAULT now(),
  expires_at    timestamptz NOT NULL
);

ALTER TABLE sessionctl.controller_replicas ENABLE ROW LEVEL SECURITY;

ALTER TABLE sessionctl.sessions
  ADD COLUMN evict_requested_at timestamptz,
  ADD COLUMN evict_reason text CONSTRAINT sessions_evict_reason_short CHECK (length(evict_reason) <= 256);

CREATE OR REPLACE FUNCTION sessionctl.sessions_notify() RETURNS trigger
  LANGUAGE plpgsql
  SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  changed sessionctl.sessions := CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
BEGIN
  IF TG_OP = 'UPDATE' AND NEW.generation = OLD.generation
     AND NEW.placed_host IS NOT DISTINCT FROM OLD.placed_host
     AND NEW.evict_requested_at IS NOT DISTINCT FROM OLD.evict_requested_at
     AND NOT (NEW.last_activity_at IS DISTINCT FROM OLD.last_activity_at
              AND jsonb_path_exists(NEW.status, '$.conditions[*] ? (@.type == "Ready" && @.reason == "IdleTimeout")')) THEN
    RETURN NULL;
  END IF;
  PERFORM pg_notify('sessionctl_sessions', json_build_object(
    'name', changed.name,
    'generation', changed.generation,
    'host', changed.placed_host,
    'previousHost', CASE WHEN TG_OP = 'UPDATE' THEN OLD.placed_host END,
    'at', extract(epoch FROM clock_timestamp()))::text);
  RETURN NULL;
END $$;

DO $grants$
DECLARE
  controller text := coalesce(nullif(current_setting('sessionctl.controller_role', true), ''), 'sessionctl_controller');
  admin      text := coalesce(nullif(current_setting('sessionctl.admin_role', true), ''), 'sessionctl_admin');
BEGIN
  EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON sessionctl.controller_replicas TO %I', controller);
  EXECUTE format('GRANT SELECT ON sessionctl.controller_replicas TO %I', admin);
  EXECUTE format('CREATE POLICY controller_replicas_controller ON sessionctl.controller_replicas TO %I USING (true) WITH CHECK (true)', controller);
  EXECUTE format('CREATE POLICY controller_replicas_admin ON sessionctl.controller_replicas FOR SELECT TO %I USING (true)', admin);
  -- Drain asks for evictions; only the controller acts on them.
  EXECUTE format('GRANT UPDATE (evict_requested_at, evict_reason) ON sessionctl.sessions TO %I', admin);
END $grants$;
