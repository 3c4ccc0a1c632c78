-- A second channel for watchers (`sessionctl get -w`, the client's watch()): it fires on every change,
-- status included. The controller never LISTENs here, so its own status writes still cannot wake it.

CREATE FUNCTION sessionctl.sessions_notify_watchers() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  row_name text;
BEGIN
  row_name := CASE WHEN TG_OP = 'DELETE' THEN OLD.name ELSE NEW.name END;
  PERFORM pg_notify('sessionctl_changes', json_build_object('name', row_name, 'op', TG_OP)::text);
  RETURN NULL;
END $$;

CREATE TRIGGER sessions_notify_watchers AFTER INSERT OR UPDATE OR DELETE ON sessionctl.sessions
  FOR EACH ROW EXECUTE FUNCTION sessionctl.sessions_notify_watchers();
