-- The live feed reads the ledger, never a notification (issue 14, finding 6).
--
-- Any login may NOTIFY on any channel, and could SET the session cache 0004's
-- trigger kept in stockops.watchers_seen: a forged payload printed a fake
-- movement or froze catch-up behind a huge id, and a forged cache silenced a
-- session's notifications. Now:
-- * a notification is only a wake-up, with an empty payload; `stockops watch`
--   reads what to print from committed ledger rows, by id
--   (api.stock_feed);
-- * a watcher holds a shared advisory lock for as long as it is connected;
--   a statement that appends movements notifies when it cannot take that
--   lock, so nothing a session can set decides whether it is announced;
-- * ids are handed out before commit, so a lower id may commit after a higher
--   one. The watcher keeps the ids below the highest it printed that it has
--   not seen, and drops one only once no transaction that could still commit
--   it is running: api.stock_feed_position gives the last id handed out and
--   the snapshot's xmin and xmax, and every transaction that appends
--   movements has a transaction id before it takes its first movement id
--   (inventory.ledger_xid below), as the audit seal horizon (0002) relies on.
--
-- Applied as inventory_owner; EXECUTE grants are declared in roles/grants.toml.

-- A transaction id before the first movement id of a statement: the default
-- (the identity) is evaluated after statement-level BEFORE triggers.
CREATE FUNCTION inventory.ledger_xid() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pg_current_xact_id();
    RETURN NULL;
END
$$;

CREATE TRIGGER stock_movements_xid
    BEFORE INSERT ON inventory.stock_movements
    FOR EACH STATEMENT EXECUTE FUNCTION inventory.ledger_xid();

-- 0004's apply_movements: the levels as before; the wake-up when a watcher
-- holds the watch lock (key 6003624428089673044, src/watch.rs WATCH_LOCK).
-- Taking and releasing a free advisory lock costs two lock-table calls; two
-- writers racing for it at the same instant make one of them notify for
-- nothing, which is harmless.
CREATE OR REPLACE FUNCTION inventory.apply_movements() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
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
    IF NOT EXISTS (SELECT 1 FROM moved) THEN
        RETURN NULL;
    END IF;
    IF pg_try_advisory_lock(6003624428089673044) THEN
        PERFORM pg_advisory_unlock(6003624428089673044);
    ELSE
        -- Delivered at commit, dropped on rollback; identical notifications
        -- of one transaction are folded into one.
        PERFORM pg_notify('stockops_stock', '');
    END IF;
    RETURN NULL;
END
$$;

-- Committed movements after p_after, and those in the ranges
-- [p_gap_from[i], p_gap_to[i]] (ids below p_after the watcher has not seen
-- yet), oldest first, at most p_limit, with the level before and after each.
CREATE FUNCTION api.stock_feed(p_after bigint, p_gap_from bigint[] DEFAULT '{}', p_gap_to bigint[] DEFAULT '{}',
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
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_after IS NULL OR cardinality(coalesce(p_gap_from, '{}')) <> cardinality(coalesce(p_gap_to, '{}')) THEN
        PERFORM inventory.fail('SO005', 'give p_after, and as many p_gap_from as p_gap_to');
    END IF;
    PERFORM inventory.require_positive('p_limit', p_limit);
    RETURN QUERY
    SELECT c.* FROM inventory.movement_changes(ARRAY(
        SELECT x.id FROM (
            SELECT m.movement_id AS id
              FROM unnest(coalesce(p_gap_from, '{}'), coalesce(p_gap_to, '{}')) g(lo, hi)
              JOIN inventory.stock_movements m ON m.movement_id BETWEEN g.lo AND g.hi
            UNION
            (SELECT m.movement_id FROM inventory.stock_movements m
              WHERE m.movement_id > p_after ORDER BY m.movement_id LIMIT p_limit)
        ) x ORDER BY x.id LIMIT p_limit)) c
     ORDER BY c.movement_id;
END
$$;

-- Where the ledger stands, for the watcher's horizon: the last movement id
-- handed out (read after this statement's snapshot was taken) and that
-- snapshot's xmin and xmax.
CREATE FUNCTION api.stock_feed_position(OUT issued bigint, OUT snapshot_xmin bigint, OUT snapshot_xmax bigint)
    LANGUAGE sql STABLE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(pg_sequence_last_value(pg_get_serial_sequence('inventory.stock_movements', 'movement_id')::regclass), 0),
           pg_snapshot_xmin(pg_current_snapshot())::text::bigint,
           pg_snapshot_xmax(pg_current_snapshot())::text::bigint
$$;
