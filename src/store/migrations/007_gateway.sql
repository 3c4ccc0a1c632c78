-- The gateway keeps each session's token hash in memory and must drop it the moment a token is
-- rotated or its expiry moves. Token writes get their own channel, so that session watchers
-- (sessionctl_changes) and the controller (sessionctl_sessions) see nothing new. The payload carries
-- the session name only, never the token or its hash.

CREATE FUNCTION sessionctl.session_tokens_notify_gateway() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('sessionctl_tokens', json_build_object(
    'name', CASE WHEN TG_OP = 'DELETE' THEN OLD.session_name ELSE NEW.session_name END)::text);
  RETURN NULL;
END $$;

CREATE TRIGGER session_tokens_notify_gateway AFTER INSERT OR UPDATE OR DELETE ON sessionctl.session_tokens
  FOR EACH ROW EXECUTE FUNCTION sessionctl.session_tokens_notify_gateway();
