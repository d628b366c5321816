-- Distributech's legacy local stock database (SQLite: products, resellers,
-- stock counts) reconciled against the central database by an `etl` login
-- (`stockops import legacy --sqlite FILE`).
--
-- Applied as inventory_owner, like the others; EXECUTE grants are declared in
-- roles/grants.toml. Released migrations are never edited.
--
-- The central catalogue is the master: products and resellers that are
-- missing or differ are reported, never changed. Stock counts are the
-- legacy system's: each (product, warehouse) whose central level differs
-- becomes one audited adjustment movement whose reason names the source and
-- both figures. Running it again finds nothing left to adjust: it is
-- idempotent.

CREATE FUNCTION api.reconcile_legacy(p_source text, p_products jsonb, p_resellers jsonb, p_stock jsonb,
                                     p_apply boolean DEFAULT true)
RETURNS TABLE (entity text, key text, field text, legacy text, central text, action text)
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog
AS $$
DECLARE
    r          record;
    v_adjusted integer := 0;
    v_reported integer := 0;
    v_reason   text;
    n          integer;
BEGIN
    PERFORM inventory.require_etl();
    PERFORM inventory.require_text('p_source', p_source);
    -- Products: unknown or different (name, category).
    RETURN QUERY
    SELECT 'product', l.sku, d.field, d.legacy, d.central,
           CASE WHEN p.product_id IS NULL THEN 'reported: not in the central catalogue'
                ELSE 'reported: the central catalogue is kept' END
      FROM jsonb_to_recordset(coalesce(p_products, '[]')) AS l(sku text, name text, category text)
      LEFT JOIN inventory.products p ON p.sku = l.sku
     CROSS JOIN LATERAL (VALUES ('name', l.name, p.name), ('category', l.category, p.category)) AS d(field, legacy, central)
     WHERE (p.product_id IS NULL AND d.field = 'name')
        OR (p.product_id IS NOT NULL AND d.legacy IS NOT NULL AND d.legacy IS DISTINCT FROM d.central)
     ORDER BY 2, 3;
    GET DIAGNOSTICS n = ROW_COUNT;
    v_reported := v_reported + n;

    -- Resellers: unknown or different (name).
    RETURN QUERY
    SELECT 'reseller', l.code, 'name', l.name, s.name,
           CASE WHEN s.reseller_id IS NULL THEN 'reported: not in the central database'
                ELSE 'reported: the central database is kept' END
      FROM jsonb_to_recordset(coalesce(p_resellers, '[]')) AS l(code text, name text)
      LEFT JOIN inventory.resellers s ON s.code = l.code
     WHERE s.reseller_id IS NULL OR (l.name IS NOT NULL AND l.name IS DISTINCT FROM s.name)
     ORDER BY 2;
    GET DIAGNOSTICS n = ROW_COUNT;
    v_reported := v_reported + n;

    -- Stock counts, in (product, warehouse) order so that two reconciliations
    -- never wait on each other in a cycle.
    FOR r IN
        SELECT l.sku, l.warehouse, l.quantity, p.product_id, w.warehouse_id
          FROM jsonb_to_recordset(coalesce(p_stock, '[]')) AS l(sku text, warehouse text, quantity integer)
          LEFT JOIN inventory.products p ON p.sku = l.sku
          LEFT JOIN inventory.warehouses w ON w.code = l.warehouse
         ORDER BY p.product_id NULLS LAST, w.warehouse_id NULLS LAST, l.sku, l.warehouse
    LOOP
        IF r.product_id IS NULL OR r.warehouse_id IS NULL THEN
            SELECT 'stock', r.sku || '@' || coalesce(r.warehouse, '?'),
                'on_hand', r.quantity::text, NULL,
                CASE WHEN r.product_id IS NULL THEN 'not applied: unknown product'
                     ELSE 'not applied: unknown warehouse' END INTO entity, key, field, legacy, central, action;
            v_reported := v_reported + 1;
            RETURN NEXT;
            CONTINUE;
        END IF;
        IF r.quantity IS NULL OR r.quantity < 0 THEN
            SELECT 'stock', r.sku || '@' || r.warehouse, 'on_hand',
                coalesce(r.quantity::text, 'NULL'), NULL, 'not applied: not a count' INTO entity, key, field, legacy, central, action;
            v_reported := v_reported + 1;
            RETURN NEXT;
            CONTINUE;
        END IF;
        DECLARE
            lvl record;
        BEGIN
            SELECT * INTO lvl FROM inventory.lock_level(r.product_id, r.warehouse_id);
            IF lvl.on_hand = r.quantity THEN
                CONTINUE;
            END IF;
            IF r.quantity < lvl.reserved THEN
                SELECT 'stock', r.sku || '@' || r.warehouse, 'on_hand',
                    r.quantity::text, lvl.on_hand::text,
                    format('not applied: %s are reserved for orders', lvl.reserved) INTO entity, key, field, legacy, central, action;
                v_reported := v_reported + 1;
                RETURN NEXT;
                CONTINUE;
            END IF;
            IF p_apply THEN
                v_reason := format('legacy reconciliation (%s): %s counted, %s recorded', p_source, r.quantity, lvl.on_hand);
                INSERT INTO inventory.stock_movements (product_id, warehouse_id, kind, quantity, reason)
                VALUES (r.product_id, r.warehouse_id, 'adjustment', r.quantity - lvl.on_hand, v_reason);
                v_adjusted := v_adjusted + 1;
            END IF;
            SELECT 'stock', r.sku || '@' || r.warehouse, 'on_hand',
                r.quantity::text, lvl.on_hand::text,
                format('%s %s', CASE WHEN p_apply THEN 'adjusted by' ELSE 'would adjust by' END,
                       CASE WHEN r.quantity > lvl.on_hand THEN '+' ELSE '' END || (r.quantity - lvl.on_hand)) INTO entity, key, field, legacy, central, action;
            RETURN NEXT;
        END;
    END LOOP;

    PERFORM audit.record('api.reconcile_legacy',
        jsonb_build_object('p_source', p_source, 'products', jsonb_array_length(coalesce(p_products, '[]')),
                           'resellers', jsonb_array_length(coalesce(p_resellers, '[]')),
                           'stock', jsonb_array_length(coalesce(p_stock, '[]')), 'p_apply', p_apply),
        jsonb_build_object('adjusted', v_adjusted, 'reported', v_reported));
END
$$;
