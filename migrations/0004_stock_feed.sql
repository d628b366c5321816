-- Live stock feed for `stockops watch`: every committed stock movement, with
-- the level before and after it, within a second of the commit.
--
-- Applied as inventory_owner, like the others; EXECUTE grants are declared in
-- roles/grants.toml. Released migrations are never edited.
--
-- How it works:
-- * The ledger's statement trigger (0001's apply_movements, replaced here)
--   also sends NOTIFY stockops_stock with the ids of the movements the
--   statement appended. PostgreSQL delivers a
--   notification at commit and drops it on rollback, so a rolled-back change
--   is never announced.
-- * Only while a watcher is connected (a session named 'stockops watch' on
--   this database, looked up at most once a second per session): a
--   notifying commit takes a cluster-wide lock, which costs the audited api
--   about half its throughput at 16 clients.
-- * The payload carries ids, never business data: any login may LISTEN on
--   any channel (PostgreSQL has no privilege for it), so partners must learn
--   nothing from it. The details come from api.stock_changes, granted like
--   api.stock_status.
-- * A statement of more than 400 movements (a seed, a bulk load) is announced
--   as one "bulk COUNT FIRST LAST" notification instead.
-- * The level before and after each movement is the level now, walked back
--   through the later movements of the same product and warehouse. The api
--   functions lock a level before they append its movement, so for one
--   product and warehouse ids are given in commit order and the walk is exact.

-- 0001's apply_movements, which moves the levels, now also announces the
-- movements: one statement trigger on the ledger, not two.
CREATE OR REPLACE FUNCTION inventory.apply_movements() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog
AS $$
DECLARE
    n       bigint;
    first   bigint;
    last    bigint;
    now_ms  bigint := (extract(epoch FROM clock_timestamp()) * 1000)::bigint;
    cached  text := current_setting('stockops.watchers_seen', true);
    watched boolean;
BEGIN
    -- Create missing rows at zero first, then move every level by its sum:
    -- the CHECK then sees only the final level (an INSERT ... ON CONFLICT
    -- would check the proposed row, a negative delta, and fail).
    INSERT INTO inventory.stock_levels (product_id, warehouse_id, on_hand)
    SELECT DISTINCT m.product_id, m.warehouse_id, 0 FROM moved m
    ON CONFLICT (product_id, warehouse_id) DO NOTHING;
    UPDATE inventory.stock_levels l
       SET on_hand = l.on_hand + d.delta, updated_at = now()
      FROM (SELECT m.product_id, m.warehouse_id, sum(m.quantity)::integer AS delta
              FROM moved m GROUP BY m.product_id, m.warehouse_id) d
     WHERE l.product_id = d.product_id AND l.warehouse_id = d.warehouse_id;
    -- The live feed (stockops watch).
    -- Is anyone watching? Looked up at most once a second per session (the
    -- lookup reads every backend's status); a watcher that connects in
    -- between finds what it missed in its next sweep.
    IF coalesce(cached, '') <> '' AND split_part(cached, ':', 1)::bigint > now_ms - 1000 THEN
        watched := split_part(cached, ':', 2) = '1';
    ELSE
        watched := EXISTS (SELECT 1 FROM pg_stat_get_activity(NULL) a
                            WHERE a.application_name = 'stockops watch'
                              AND a.datid = (SELECT d.oid FROM pg_database d
                                              WHERE d.datname = current_database()));
        PERFORM set_config('stockops.watchers_seen', now_ms || ':' || watched::integer, false);
    END IF;
    IF NOT watched THEN
        RETURN NULL;
    END IF;
    SELECT count(*), min(m.movement_id), max(m.movement_id) INTO n, first, last FROM moved m;
    IF n = 0 THEN
        RETURN NULL;
    ELSIF n > 400 THEN
        PERFORM pg_notify('stockops_stock', format('bulk %s %s %s', n, first, last));
    ELSE
        PERFORM pg_notify('stockops_stock',
                          (SELECT string_agg(m.movement_id::text, ',' ORDER BY m.movement_id) FROM moved m));
    END IF;
    RETURN NULL;
END
$$;

-- Movements by id, with the level before and after each.
CREATE FUNCTION inventory.movement_changes(p_ids bigint[])
RETURNS TABLE (
    movement_id bigint,
    sku         text,
    warehouse   text,
    kind        text,
    quantity    integer,
    old_level   integer,
    new_level   integer,
    occurred_at timestamptz,
    actor       text
)
    LANGUAGE sql STABLE
    SET search_path = pg_catalog
AS $$
    WITH wanted AS (
        SELECT m.* FROM inventory.stock_movements m WHERE m.movement_id = ANY (p_ids)
    ), since AS (
        -- every movement of the same levels from the oldest one asked for on
        SELECT m.movement_id, m.product_id, m.warehouse_id, m.quantity
          FROM (SELECT w.product_id, w.warehouse_id, min(w.movement_id) AS lo
                  FROM wanted w GROUP BY w.product_id, w.warehouse_id) k
          JOIN inventory.stock_movements m
            ON m.product_id = k.product_id AND m.warehouse_id = k.warehouse_id AND m.movement_id >= k.lo
    ), walked AS (
        SELECT s.movement_id,
               (l.on_hand - coalesce(sum(s.quantity) OVER (
                    PARTITION BY s.product_id, s.warehouse_id ORDER BY s.movement_id DESC
                    ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0))::integer AS after
          FROM since s
          JOIN inventory.stock_levels l ON l.product_id = s.product_id AND l.warehouse_id = s.warehouse_id
    )
    SELECT w.movement_id, p.sku, wh.code, w.kind, w.quantity, k.after - w.quantity, k.after,
           w.occurred_at, w.actor::text
      FROM wanted w
      JOIN walked k ON k.movement_id = w.movement_id
      JOIN inventory.products p ON p.product_id = w.product_id
      JOIN inventory.warehouses wh ON wh.warehouse_id = w.warehouse_id
$$;

-- The movements behind a notification, or every movement after an id (to
-- catch up after a reconnection), oldest first, at most p_limit.
CREATE FUNCTION api.stock_changes(p_ids bigint[] DEFAULT NULL, p_after bigint DEFAULT NULL,
                                  p_limit integer DEFAULT 10000)
RETURNS TABLE (
    movement_id bigint,
    sku         text,
    warehouse   text,
    kind        text,
    quantity    integer,
    old_level   integer,
    new_level   integer,
    occurred_at timestamptz,
    actor       text
)
    LANGUAGE plpgsql STABLE
    SECURITY DEFINER
    SET search_path = pg_catalog
AS $$
BEGIN
    IF (p_ids IS NULL) = (p_after IS NULL) THEN
        RAISE EXCEPTION 'give either p_ids or p_after'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM inventory.require_positive('p_limit', p_limit);
    IF p_ids IS NOT NULL THEN
        RETURN QUERY
        SELECT c.* FROM inventory.movement_changes(p_ids) c ORDER BY c.movement_id LIMIT p_limit;
    ELSE
        RETURN QUERY
        SELECT c.* FROM inventory.movement_changes(ARRAY(
            SELECT m.movement_id FROM inventory.stock_movements m
             WHERE m.movement_id > p_after ORDER BY m.movement_id LIMIT p_limit)) c
         ORDER BY c.movement_id;
    END IF;
END
$$;

-- The newest movement id: where a new watcher starts.
CREATE FUNCTION api.stock_changes_head()
RETURNS bigint
    LANGUAGE sql STABLE
    SECURITY DEFINER
    SET search_path = pg_catalog
AS $$
    SELECT coalesce(max(movement_id), 0) FROM inventory.stock_movements
$$;
