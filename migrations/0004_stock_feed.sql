-- Live stock feed for `stockops watch`: every committed stock movement, with
-- the level before and after it, within a second of the commit.
--
-- Applied as inventory_owner, like the others; EXECUTE grants are declared in
-- roles/grants.toml. Released migrations are never edited.
--
-- How it works:
-- * A statement-level trigger on the ledger runs after the one that moves the
--   levels (triggers of one event fire in name order: "apply" < "feed"), so
--   it sees each level as the statement left it, still row-locked by this
--   transaction: the level after each movement is exact, whatever the commit
--   order of concurrent transactions.
-- * It records (movement, old level, new level) in an UNLOGGED side table
--   and sends NOTIFY stockops_stock with the movement ids only. PostgreSQL
--   delivers a notification at commit and drops it on rollback, so a
--   rolled-back change is never announced.
-- * The payload carries ids, never business data: any login may LISTEN on
--   any channel (PostgreSQL has no privilege for it), so partners must learn
--   nothing from it. The details come from api.stock_changes, granted like
--   api.stock_status.
-- * A statement of more than 400 movements (a seed, a bulk load) is announced
--   as one "bulk COUNT FIRST LAST" notification instead, without side rows.
-- * The side table keeps the last million movements' levels; older rows are
--   cleared now and then by the trigger. It is UNLOGGED (no WAL, emptied by a
--   crash, not in fingerprints): a movement without a row there is reported
--   without levels, nothing else is lost.

CREATE UNLOGGED TABLE inventory.stock_feed (
    movement_id bigint PRIMARY KEY,
    old_level   integer NOT NULL,
    new_level   integer NOT NULL
);

COMMENT ON TABLE inventory.stock_feed IS
    'level before and after each recent stock movement, for stockops watch (unlogged, last million movements)';

CREATE FUNCTION inventory.feed_movements() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog
AS $$
DECLARE
    n     bigint;
    first bigint;
    last  bigint;
BEGIN
    SELECT count(*), min(m.movement_id), max(m.movement_id) INTO n, first, last FROM moved m;
    IF n = 0 THEN
        RETURN NULL;
    END IF;
    IF n > 400 THEN
        PERFORM pg_notify('stockops_stock', format('bulk %s %s %s', n, first, last));
        RETURN NULL;
    END IF;
    -- The level after the last movement of this statement is the level now;
    -- walk back through the statement's movements in id order.
    INSERT INTO inventory.stock_feed (movement_id, old_level, new_level)
    SELECT s.movement_id, s.after - s.quantity, s.after
      FROM (SELECT m.movement_id, m.quantity,
                   l.on_hand - coalesce(sum(m.quantity) OVER (
                       PARTITION BY m.product_id, m.warehouse_id ORDER BY m.movement_id DESC
                       ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)::integer AS after
              FROM moved m
              JOIN inventory.stock_levels l
                ON l.product_id = m.product_id AND l.warehouse_id = m.warehouse_id) s
    ON CONFLICT (movement_id) DO NOTHING;
    PERFORM pg_notify('stockops_stock',
                      (SELECT string_agg(m.movement_id::text, ',' ORDER BY m.movement_id) FROM moved m));
    IF random() < 0.001 THEN
        DELETE FROM inventory.stock_feed f WHERE f.movement_id < first - 1000000;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER stock_movements_feed
    AFTER INSERT ON inventory.stock_movements
    REFERENCING NEW TABLE AS moved
    FOR EACH STATEMENT EXECUTE FUNCTION inventory.feed_movements();

-- Movements by id, with their levels when the side table still has them.
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
    SELECT m.movement_id, p.sku, w.code, m.kind, m.quantity, f.old_level, f.new_level,
           m.occurred_at, m.actor::text
      FROM inventory.stock_movements m
      JOIN inventory.products p ON p.product_id = m.product_id
      JOIN inventory.warehouses w ON w.warehouse_id = m.warehouse_id
      LEFT JOIN inventory.stock_feed f ON f.movement_id = m.movement_id
     WHERE m.movement_id = ANY (p_ids)
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
