-- Every function that pins its search_path now ends it with pg_temp
-- (issue 14, finding 8).
--
-- A search_path that does not name pg_temp searches it first for tables,
-- views and types: a session that can create temporary objects could shadow
-- an unqualified name inside a SECURITY DEFINER function and run with the
-- owner's rights. Named last, it is searched last (and never for functions
-- or operators). Migrations 0001–0006 pinned `pg_catalog` alone; later ones
-- write `pg_catalog, pg_temp`. A SECURITY DEFINER function with no pinned
-- search_path gets `pg_catalog, pg_temp`. `stockops provision --check`
-- reports any definer function in the managed schemas whose search_path does
-- not end with pg_temp, and `stockops provision` repairs it.
--
-- Applied as inventory_owner, which owns every function it alters.

DO $$
DECLARE
    f record;
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure AS fn
          FROM pg_catalog.pg_proc p
          JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
         WHERE n.nspname IN ('inventory', 'api', 'audit')
           AND (EXISTS (SELECT 1 FROM pg_catalog.unnest(p.proconfig) c
                         WHERE c = 'search_path=pg_catalog')
                OR (p.prosecdef AND NOT EXISTS (SELECT 1 FROM pg_catalog.unnest(p.proconfig) c
                                                  WHERE c LIKE 'search\_path=%')))
    LOOP
        EXECUTE pg_catalog.format('ALTER FUNCTION %s SET search_path = pg_catalog, pg_temp', f.fn);
    END LOOP;
END
$$;
