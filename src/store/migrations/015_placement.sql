-- Placement: which host a session runs on, decided once and written in the same transaction that
-- counts the host's capacity (src/store/placement.ts). Not the `host` column of 001: that one is
-- what the reconciler last observed and every status write rewrites it, so a late status write must
-- never be able to move a session. These columns are written by placement only.
--
--   placed_host          the host; NULL = not placed yet. Deleting the host unplaces its sessions.
--   placed_memory_bytes  the memory the session was counted with (spec.resources.memory, or the
--                        controller's default), so a host's allocation is a sum over an index and
--                        does not change if the default does.
--   placed_at            when it was placed (scheduling latency).
--
-- Writers cannot set them: their INSERT and UPDATE grants name columns (003, 009), and these are
-- not among them. The controller's table-wide grant covers them.

ALTER TABLE sessionctl.sessions
  ADD COLUMN placed_host text REFERENCES sessionctl.hosts (name) ON DELETE SET NULL,
  ADD COLUMN placed_memory_bytes bigint CONSTRAINT sessions_placed_memory_not_negative CHECK (placed_memory_bytes >= 0),
  ADD COLUMN placed_at timestamptz;

-- What a placement sums per host, without touching the sessions' heap when the visibility map allows.
CREATE INDEX sessions_by_placed_host ON sessionctl.sessions (placed_host) INCLUDE (placed_memory_bytes)
  WHERE placed_host IS NOT NULL;

-- The placer's queue: sessions still waiting for a host, oldest change first, without scanning the
-- thousands that are placed.
CREATE INDEX sessions_unplaced ON sessionctl.sessions (generation_changed_at)
  WHERE placed_host IS NULL AND deletion_requested_at IS NULL;
