-- What the controller did to each session, deduplicated like Kubernetes events:
-- the same reason and message bump a count instead of adding a row.

CREATE TABLE sessionctl.events (
  id           bigserial PRIMARY KEY,
  session_name text NOT NULL,
  session_uid  uuid,
  type         text NOT NULL CONSTRAINT events_type CHECK (type IN ('Normal', 'Warning')),
  reason       text NOT NULL,
  message      text NOT NULL,
  count        integer NOT NULL DEFAULT 1,
  first_seen   timestamptz NOT NULL DEFAULT now(),
  last_seen    timestamptz NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX events_dedupe ON sessionctl.events (session_name, reason, md5(message));
CREATE INDEX events_by_session ON sessionctl.events (session_name, last_seen DESC);
