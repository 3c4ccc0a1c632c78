-- The fleet's Docker hosts as rows (`kind: DockerHost`, `sessionctl apply -f`). A row names how to
-- reach a daemon and how much it may hold; the client certificates stay files on the controller
-- machines (cert_dir), never rows.
--
--   endpoint          tcp://HOST:PORT; the daemon must require mutual TLS.
--   max_sessions, allocatable_memory_bytes
--                     capacity for placement (015); NULL is unlimited.
--   cordoned          no new placements (`sessionctl cordon`); placed sessions stay.
--   state             what the leaseholding controller last saw: Pending (never contacted), Ready,
--                     Unreachable (API or event stream silent), Lost (unreachable past the lost-after
--                     time). Placement uses Pending and Ready hosts only.
--   generation        moves when what an operator declares changes (endpoint, certificates,
--                     labels, capacity, advertise address, cordon), as for sessions.
--   source            manifest (apply) or DOCKER_HOST (registered by the controller at start).
--
-- Who may do what: the admin role manages hosts (apply, cordon, delete); the controller reads them,
-- registers its DOCKER_HOST host and writes the observed state; writers see nothing: endpoints and
-- certificate paths are infrastructure, not theirs. Row-level security as in 009, so that a later
-- grant cannot widen this by accident.

CREATE TABLE sessionctl.hosts (
  name                      text PRIMARY KEY
                            CONSTRAINT hosts_name_is_dns_label CHECK (name ~ '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$'),
  uid                       uuid NOT NULL DEFAULT gen_random_uuid(),
  endpoint                  text NOT NULL
                            CONSTRAINT hosts_endpoint_is_tcp CHECK (endpoint ~ '^tcp://([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):[0-9]{1,5}$'),
  cert_dir                  text NOT NULL
                            CONSTRAINT hosts_cert_dir_is_absolute CHECK (cert_dir LIKE '/%'),
  labels                    jsonb NOT NULL DEFAULT '{}'::jsonb
                            CONSTRAINT hosts_labels_are_strings CHECK (jsonb_typeof(labels) = 'object'
                              AND NOT jsonb_path_exists(labels, 'strict $.* ? (@.type() != "string")')),
  max_sessions              integer CONSTRAINT hosts_max_sessions_not_negative CHECK (max_sessions >= 0),
  allocatable_memory_bytes  bigint CONSTRAINT hosts_memory_not_negative CHECK (allocatable_memory_bytes >= 0),
  advertise_address         text,
  cordoned                  boolean NOT NULL DEFAULT false,
  state                     text NOT NULL DEFAULT 'Pending'
                            CONSTRAINT hosts_state_known CHECK (state IN ('Pending', 'Ready', 'Unreachable', 'Lost')),
  state_message             text,
  state_changed_at          timestamptz NOT NULL DEFAULT now(),
  source                    text NOT NULL DEFAULT 'manifest'
                            CONSTRAINT hosts_source_known CHECK (source IN ('manifest', 'DOCKER_HOST')),
  generation                bigint NOT NULL DEFAULT 1,
  created_at                timestamptz NOT NULL DEFAULT now(),
  updated_at                timestamptz NOT NULL DEFAULT now(),
  -- Two rows for one daemon would let placement count its capacity twice.
  CONSTRAINT hosts_endpoint_unique UNIQUE (endpoint)
);

CREATE FUNCTION sessionctl.hosts_before_write() RETURNS trigger
  LANGUAGE plpgsql
  SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    NEW.uid := pg_catalog.gen_random_uuid();
    NEW.generation := 1;
    NEW.created_at := pg_catalog.now();
    NEW.updated_at := pg_catalog.now();
    NEW.state_changed_at := pg_catalog.now();
    RETURN NEW;
  END IF;
  NEW.uid := OLD.uid;
  NEW.created_at := OLD.created_at;
  IF (NEW.endpoint, NEW.cert_dir, NEW.labels, NEW.max_sessions, NEW.allocatable_memory_bytes, NEW.advertise_address, NEW.cordoned)
     IS DISTINCT FROM
     (OLD.endpoint, OLD.cert_dir, OLD.labels, OLD.max_sessions, OLD.allocatable_memory_bytes, OLD.advertise_address, OLD.cordoned) THEN
    NEW.generation := OLD.generation + 1;
    NEW.updated_at := pg_catalog.now();
  ELSE
    NEW.generation := OLD.generation;
    NEW.updated_at := OLD.updated_at;
  END IF;
  IF NEW.state IS DISTINCT FROM OLD.state THEN
    NEW.state_changed_at := pg_catalog.now();
  ELSE
    NEW.state_changed_at := OLD.state_changed_at;
  END IF;
  RETURN NEW;
END $$;

-- Controllers wake on a host change that can make room or take it away (capacity, cordon, state),
-- instead of polling: channel sessionctl_hosts, payload {"name", "generation", "state"}.
CREATE FUNCTION sessionctl.hosts_notify() RETURNS trigger
  LANGUAGE plpgsql
  SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  changed sessionctl.hosts := CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
BEGIN
  IF TG_OP = 'UPDATE' AND NEW.generation = OLD.generation AND NEW.state = OLD.state THEN
    RETURN NULL;
  END IF;
  PERFORM pg_catalog.pg_notify('sessionctl_hosts', pg_catalog.json_build_object(
    'name', changed.name, 'op', TG_OP, 'generation', changed.generation, 'state', changed.state)::text);
  RETURN NULL;
END $$;

CREATE TRIGGER hosts_before_write BEFORE INSERT OR UPDATE ON sessionctl.hosts
  FOR EACH ROW EXECUTE FUNCTION sessionctl.hosts_before_write();
CREATE TRIGGER hosts_notify AFTER INSERT OR UPDATE OR DELETE ON sessionctl.hosts
  FOR EACH ROW EXECUTE FUNCTION sessionctl.hosts_notify();

ALTER TABLE sessionctl.hosts ENABLE ROW LEVEL SECURITY;

DO $grants$
DECLARE
  controller text := coalesce(nullif(current_setting('sessionctl.controller_role', true), ''), 'sessionctl_controller');
  admin      text := coalesce(nullif(current_setting('sessionctl.admin_role', true), ''), 'sessionctl_admin');
BEGIN
  EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON sessionctl.hosts TO %I', admin);
  -- The controller registers its DOCKER_HOST host and reports what it sees; it never edits what an
  -- operator declared (endpoint, capacity, labels, cordon) nor deletes a host.
  EXECUTE format('GRANT SELECT ON sessionctl.hosts TO %I', controller);
  EXECUTE format('GRANT INSERT (name, endpoint, cert_dir, advertise_address, source) ON sessionctl.hosts TO %I', controller);
  EXECUTE format('GRANT UPDATE (state, state_message) ON sessionctl.hosts TO %I', controller);
  EXECUTE format('CREATE POLICY hosts_all ON sessionctl.hosts TO %I, %I USING (true) WITH CHECK (true)', controller, admin);
END $grants$;
