-- Which controller replica reconciles a host: one lease row per host (src/store/leases.ts).
--
--   holder       the replica's identity, unique per process; NULL once released.
--   epoch        grows at every takeover (a new holder, or the same holder after its lease lapsed or
--                was released). Every status, event and host write of the holder is made conditional
--                on (host, holder, epoch) still being current, so a replica that was paused and wakes
--                late changes nothing (fencing).
--   renewed_at, expires_at
--                from the database's clock (now()) only: the replicas' clocks never decide.
--
-- Only the controller takes, renews and releases leases; the admin may read them (`get hosts`).
-- No advisory locks: a lease is a row, so it survives a connection loss and works through any pooler.

CREATE TABLE sessionctl.host_leases (
  host         text PRIMARY KEY REFERENCES sessionctl.hosts (name) ON DELETE CASCADE,
  holder       text,
  epoch        bigint NOT NULL DEFAULT 0 CONSTRAINT host_leases_epoch_not_negative CHECK (epoch >= 0),
  acquired_at  timestamptz,
  renewed_at   timestamptz,
  expires_at   timestamptz NOT NULL DEFAULT '-infinity'
);

ALTER TABLE sessionctl.host_leases ENABLE ROW LEVEL SECURITY;

DO $grants$
DECLARE
  controller text := coalesce(nullif(current_setting('sessionctl.controller_role', true), ''), 'sessionctl_controller');
  admin      text := coalesce(nullif(current_setting('sessionctl.admin_role', true), ''), 'sessionctl_admin');
BEGIN
  EXECUTE format('GRANT SELECT, INSERT, UPDATE ON sessionctl.host_leases TO %I', controller);
  EXECUTE format('GRANT SELECT ON sessionctl.host_leases TO %I', admin);
  EXECUTE format('CREATE POLICY host_leases_controller ON sessionctl.host_leases TO %I USING (true) WITH CHECK (true)', controller);
  EXECUTE format('CREATE POLICY host_leases_admin ON sessionctl.host_leases FOR SELECT TO %I USING (true)', admin);
END $grants$;
