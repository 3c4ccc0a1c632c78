-- Every function of the sessionctl schema runs with a fixed search_path. Trigger functions run as
-- whoever fires them (a writer, the controller, an admin), so without this a role that may create
-- objects in a schema earlier on a caller's search_path (public, on a loosely configured server)
-- could plant a same-named function or operator and have it run as that caller. Every name these
-- functions use is either schema-qualified (sessionctl.sessions) or a pg_catalog builtin.
-- pg_temp goes last explicitly: left out, it would be searched first.
--
-- Migrations themselves run under `SET LOCAL search_path = sessionctl, pg_catalog, pg_temp`
-- (src/store/migrate.ts), and a test checks that every function, including later ones, is pinned.

DO $pin$
DECLARE
  fn regprocedure;
BEGIN
  FOR fn IN
    SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
     WHERE p.pronamespace = 'sessionctl'::regnamespace
       AND NOT coalesce(p.proconfig::text[] && ARRAY['search_path=pg_catalog, pg_temp'], false)
  LOOP
    EXECUTE format('ALTER FUNCTION %s SET search_path = pg_catalog, pg_temp', fn);
  END LOOP;
END $pin$;
