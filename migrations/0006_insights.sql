-- Insights: a demand forecast with weekly seasonality that feeds reordering,
-- sales anomalies, and data-quality rules. All read-only, SQL only.
--
-- Applied as inventory_owner, like the others; EXECUTE grants are declared in
-- roles/grants.toml. Released migrations are never edited.
--
-- The forecast (inventory.forecast_daily, api.demand_forecast). For each
-- product and warehouse with fulfilled sales in the last N weeks before the
-- forecast date, units on day d are
--
--     level(product, warehouse) * weekday_index(weekday of d) * recent_factor
--
-- * level: the pair's mean units per day over the N weeks;
-- * weekday_index: the whole business's mean units on that weekday over the
--   N weeks, divided by its mean units per day (1.0 on average). Pooled over
--   every product: a product sells a few units a week, far too few to learn
--   seven weekday means of its own, whereas the week's shape is the
--   business's (resellers order on working days). A product's own profile,
--   shrunk towards the pooled one, scored worse on held-out weeks (README,
--   Performance);
-- * recent_factor: the business's units per day over the last 2 weeks over
--   its units per day over the N weeks, held between 0.5 and 2: the season
--   and trend, again measured where there is enough data to measure them.
-- Days are UTC days; the history ends the day before the forecast starts.
--
-- Reordering from the forecast is api.reorder_forecast, a new function with
-- exactly the columns of api.reorder_needs: reorder_needs (0002) keeps its
-- meaning (velocity = units sold over the last p_window_days), so the tools
-- and figures built on it do not change under their users, and the two can be
-- compared side by side (stockops report reorder --forecast).
--
-- Anomalies (api.sales_anomalies): for each product, its daily units over the
-- period (all warehouses, days without sales count as zero); a day is scored
-- against the product's other days (leave-one-out mean and standard
-- deviation, the deviation floored at 1 unit and at the square root of the
-- mean, as for counts), so one huge day cannot hide itself by inflating the
-- norm, and a product that sells the same every day has no anomaly. The
-- default threshold is 6: demand is lumpy, and a product that sells a few
-- times a month scores 4 on an ordinary order (the seed at scale 0.1 has 249
-- days at 4 or more in a quarter, 64 at 6).
--
-- Data quality (api.data_quality): one row per rule that finds something.
-- Most orphans cannot happen (foreign keys, NOT NULL, CHECKs); the rules test
-- what still can: a level that no longer equals its ledger (a direct UPDATE or
-- a disabled trigger), orders without lines, fulfilled orders whose stock
-- never moved, partner bindings to dropped logins, duplicates that differ
-- only by case, spacing or punctuation, and placeholders where a value is
-- meaningless (an 'N/A' category, a zero price, no supplier to reorder from).

-- Forecast ----------------------------------------------------------------

CREATE FUNCTION inventory.forecast_daily(p_as_of date, p_days integer, p_history_weeks integer)
RETURNS TABLE (product_id integer, warehouse_id smallint, day date, units numeric)
    LANGUAGE sql STABLE
    SET search_path = pg_catalog
AS $$
    -- Each step materialized once: inlined, the weekday profile would be
    -- recomputed for every output row.
    WITH hist AS MATERIALIZED (
        SELECT l.product_id, o.warehouse_id, (o.ordered_at AT TIME ZONE 'UTC')::date AS day,
               sum(l.quantity)::numeric AS units
          FROM inventory.sales_orders o
          JOIN inventory.sales_order_lines l USING (sales_order_id)
         WHERE o.status = 'fulfilled'
           AND o.ordered_at >= (p_as_of - 7 * p_history_weeks)::timestamp AT TIME ZONE 'UTC'
           AND o.ordered_at < p_as_of::timestamp AT TIME ZONE 'UTC'
         GROUP BY 1, 2, 3
    ), total AS MATERIALIZED (
        SELECT coalesce(sum(h.units), 0) / (7 * p_history_weeks) AS per_day,
               coalesce(sum(h.units) FILTER (WHERE h.day >= p_as_of - 14), 0)
                   / least(14, 7 * p_history_weeks) AS recent_per_day
          FROM hist h
    ), by_dow AS MATERIALIZED (
        SELECT extract(isodow FROM h.day)::integer AS dow, sum(h.units) AS units FROM hist h GROUP BY 1
    ), weekday AS MATERIALIZED (
        SELECT d.dow, coalesce(b.units, 0) / p_history_weeks / nullif(t.per_day, 0) AS idx
          FROM generate_series(1, 7) AS d(dow)
          CROSS JOIN total t
          LEFT JOIN by_dow b ON b.dow = d.dow
    ), pairs AS MATERIALIZED (
        SELECT h.product_id, h.warehouse_id, sum(h.units) / (7 * p_history_weeks) AS level
          FROM hist h GROUP BY 1, 2
    )
    SELECT p.product_id, p.warehouse_id, f.day::date,
           p.level * coalesce(w.idx, 1)
               * greatest(0.5, least(2.0, coalesce(t.recent_per_day / nullif(t.per_day, 0), 1)))
      FROM pairs p
     CROSS JOIN total t
     CROSS JOIN generate_series(p_as_of, p_as_of + p_days - 1, interval '1 day') AS f(day)
      JOIN weekday w ON w.dow = extract(isodow FROM f.day)::integer
$$;

CREATE FUNCTION api.demand_forecast(p_days integer DEFAULT 14, p_history_weeks integer DEFAULT 8,
                                    p_as_of date DEFAULT NULL)
RETURNS TABLE (sku text, warehouse text, days integer, forecast_units numeric, per_day numeric,
               weekday_units numeric, weekend_units numeric, history_units bigint)
    LANGUAGE plpgsql STABLE
    SECURITY DEFINER
    SET search_path = pg_catalog
AS $$
DECLARE
    v_as_of date := coalesce(p_as_of, (now() AT TIME ZONE 'UTC')::date);
BEGIN
    PERFORM inventory.require_positive('p_days', p_days);
    PERFORM inventory.require_positive('p_history_weeks', p_history_weeks);
    IF p_days > 366 OR p_history_weeks > 104 THEN
        PERFORM inventory.fail('SO005', format('at most 366 days ahead from at most 104 weeks of history, got %s and %s',
                                               p_days, p_history_weeks));
    END IF;
    RETURN QUERY
    WITH f AS (
        SELECT * FROM inventory.forecast_daily(v_as_of, p_days, p_history_weeks)
    ), per_pair AS (
        SELECT f.product_id, f.warehouse_id, sum(f.units) AS total,
               -- one typical working day and one weekend day, to show the week's shape
               avg(f.units) FILTER (WHERE extract(isodow FROM f.day) < 6) AS wd,
               avg(f.units) FILTER (WHERE extract(isodow FROM f.day) >= 6) AS we
          FROM f GROUP BY 1, 2
    ), hist AS (
        SELECT l.product_id, o.warehouse_id, sum(l.quantity)::bigint AS units
          FROM inventory.sales_orders o
          JOIN inventory.sales_order_lines l USING (sales_order_id)
         WHERE o.status = 'fulfilled'
           AND o.ordered_at >= (v_as_of - 7 * p_history_weeks)::timestamp AT TIME ZONE 'UTC'
           AND o.ordered_at < v_as_of::timestamp AT TIME ZONE 'UTC'
         GROUP BY 1, 2
    )
    SELECT p.sku, w.code, p_days, round(pp.total, 1), round(pp.total / p_days, 3),
           round(pp.wd, 3), round(pp.we, 3), coalesce(h.units, 0)
      FROM per_pair pp
      JOIN inventory.products p ON p.product_id = pp.product_id
      JOIN inventory.warehouses w ON w.warehouse_id = pp.warehouse_id
      LEFT JOIN hist h ON h.product_id = pp.product_id AND h.warehouse_id = pp.warehouse_id
     ORDER BY pp.total DESC, p.sku, w.code;
END
$$;

-- api.reorder_needs's columns and rule, the velocity being the forecast's
-- units per day over the next p_days instead of the past window's.
CREATE FUNCTION api.reorder_forecast(p_days integer DEFAULT 28, p_history_weeks integer DEFAULT 8)
RETURNS TABLE (sku text, warehouse text, available integer, on_order integer, reorder_point integer,
               daily_velocity numeric, lead_time_days integer, suggested_quantity integer, supplier text)
    LANGUAGE plpgsql STABLE
    SECURITY DEFINER
    SET search_path = pg_catalog
AS $$
BEGIN
    PERFORM inventory.require_positive('p_days', p_days);
    PERFORM inventory.require_positive('p_history_weeks', p_history_weeks);
    IF p_days > 366 OR p_history_weeks > 104 THEN
        PERFORM inventory.fail('SO005', format('at most 366 days ahead from at most 104 weeks of history, got %s and %s',
                                               p_days, p_history_weeks));
    END IF;
    RETURN QUERY
    WITH velocity AS (
        SELECT f.product_id, f.warehouse_id, sum(f.units) / p_days AS per_day
          FROM inventory.forecast_daily((now() AT TIME ZONE 'UTC')::date, p_days, p_history_weeks) f
         GROUP BY 1, 2
    ), open_po AS (
        SELECT po.warehouse_id, pl.product_id, sum(pl.quantity_ordered - pl.quantity_received)::integer AS qty
          FROM inventory.purchase_orders po
          JOIN inventory.purchase_order_lines pl USING (purchase_order_id)
         WHERE po.status IN ('draft', 'sent', 'partially_received')
         GROUP BY po.warehouse_id, pl.product_id
    ), state AS (
        SELECT p.sku, w.code AS warehouse, (l.on_hand - l.reserved) AS available, coalesce(o.qty, 0) AS on_order,
               p.reorder_point, p.reorder_quantity, coalesce(v.per_day, 0) AS per_day,
               coalesce(s.lead_time_days, 14) AS lead, s.code AS supplier
          FROM inventory.stock_levels l
          JOIN inventory.products p USING (product_id)
          JOIN inventory.warehouses w ON w.warehouse_id = l.warehouse_id
          LEFT JOIN inventory.suppliers s ON s.supplier_id = p.preferred_supplier_id
          LEFT JOIN open_po o ON o.warehouse_id = l.warehouse_id AND o.product_id = l.product_id
          LEFT JOIN velocity v ON v.warehouse_id = l.warehouse_id AND v.product_id = l.product_id
         WHERE p.active
    )
    SELECT st.sku, st.warehouse, st.available, st.on_order, st.reorder_point, round(st.per_day, 2), st.lead,
           greatest(st.reorder_quantity,
                    ceil(st.per_day * st.lead)::integer + st.reorder_point - st.available - st.on_order),
           st.supplier
      FROM state st
     WHERE st.available + st.on_order <= st.reorder_point
     ORDER BY st.per_day DESC, st.sku, st.warehouse;
END
$$;

-- Anomalies ---------------------------------------------------------------

CREATE FUNCTION api.sales_anomalies(p_from date, p_to date, p_z numeric DEFAULT 6)
RETURNS TABLE (sku text, day date, units bigint, expected numeric, score numeric)
    LANGUAGE plpgsql STABLE
    SECURITY DEFINER
    SET search_path = pg_catalog
AS $$
DECLARE
    v_days integer := p_to - p_from;
BEGIN
    PERFORM inventory.require_period(p_from, p_to);
    IF p_z IS NULL OR p_z <= 0 THEN
        PERFORM inventory.fail('SO005', format('p_z must be a positive score, got %s', coalesce(p_z::text, 'NULL')));
    END IF;
    IF v_days < 7 THEN
        PERFORM inventory.fail('SO005', format('a period of at least 7 days is needed to know a norm, got %s', v_days));
    END IF;
    RETURN QUERY
    WITH daily AS (
        SELECT l.product_id, (o.ordered_at AT TIME ZONE 'UTC')::date AS d, sum(l.quantity)::numeric AS x
          FROM inventory.sales_orders o
          JOIN inventory.sales_order_lines l USING (sales_order_id)
         WHERE o.status = 'fulfilled'
           AND o.ordered_at >= p_from::timestamp AT TIME ZONE 'UTC'
           AND o.ordered_at < p_to::timestamp AT TIME ZONE 'UTC'
         GROUP BY 1, 2
    ), sums AS (
        SELECT daily.product_id, sum(daily.x) AS s, sum(daily.x * daily.x) AS q FROM daily GROUP BY 1
    ), scored AS (
        -- the norm of the other v_days - 1 days (zeros included)
        SELECT d.product_id, d.d, d.x, (su.s - d.x) / (v_days - 1) AS mean_o,
               greatest(0, (su.q - d.x * d.x) / (v_days - 1) - ((su.s - d.x) / (v_days - 1)) ^ 2) AS var_o
          FROM daily d JOIN sums su USING (product_id)
    )
    SELECT p.sku, sc.d, sc.x::bigint, round(sc.mean_o, 2),
           round((sc.x - sc.mean_o) / greatest(1, sqrt(sc.var_o), sqrt(sc.mean_o)), 2)
      FROM scored sc
      JOIN inventory.products p ON p.product_id = sc.product_id
     WHERE (sc.x - sc.mean_o) / greatest(1, sqrt(sc.var_o), sqrt(sc.mean_o)) >= p_z
     ORDER BY 5 DESC, p.sku, sc.d;
END
$$;

-- Data quality ------------------------------------------------------------

CREATE FUNCTION api.data_quality()
RETURNS TABLE (rule text, severity text, count bigint, example text, description text)
    LANGUAGE plpgsql STABLE
    SECURITY DEFINER
    SET search_path = pg_catalog
AS $$
BEGIN
    RETURN QUERY
    WITH findings(rule, severity, n, example, description) AS (
        -- Level vs ledger: the level is the sum of its movements.
        SELECT 'level_vs_ledger', 'error', count(*), min(x.label),
               'stock_levels.on_hand differs from the sum of the stock movements'
          FROM (SELECT p.sku || '@' || w.code || ': level ' || coalesce(l.on_hand, 0) || ', ledger '
                       || coalesce(m.total, 0) AS label
                  FROM inventory.stock_levels l
                  FULL JOIN (SELECT sm.product_id, sm.warehouse_id, sum(sm.quantity) AS total
                               FROM inventory.stock_movements sm GROUP BY 1, 2) m
                    ON m.product_id = l.product_id AND m.warehouse_id = l.warehouse_id
                  JOIN inventory.products p ON p.product_id = coalesce(l.product_id, m.product_id)
                  JOIN inventory.warehouses w ON w.warehouse_id = coalesce(l.warehouse_id, m.warehouse_id)
                 WHERE coalesce(l.on_hand, 0) <> coalesce(m.total, 0)) x
        UNION ALL
        -- Reservations: what submitted orders hold, released when fulfilled.
        SELECT 'reserved_vs_open_orders', 'error', count(*), min(x.label),
               'stock_levels.reserved differs from the units of the submitted orders'
          FROM (SELECT p.sku || '@' || w.code || ': reserved ' || coalesce(l.reserved, 0) || ', submitted '
                       || coalesce(r.total, 0) AS label
                  FROM inventory.stock_levels l
                  FULL JOIN (SELECT sl.product_id, so.warehouse_id, sum(sl.quantity) AS total
                               FROM inventory.sales_orders so
                               JOIN inventory.sales_order_lines sl USING (sales_order_id)
                              WHERE so.status = 'submitted' GROUP BY 1, 2) r
                    ON r.product_id = l.product_id AND r.warehouse_id = l.warehouse_id
                  JOIN inventory.products p ON p.product_id = coalesce(l.product_id, r.product_id)
                  JOIN inventory.warehouses w ON w.warehouse_id = coalesce(l.warehouse_id, r.warehouse_id)
                 WHERE coalesce(l.reserved, 0) <> coalesce(r.total, 0)) x
        UNION ALL
        SELECT 'sales_orders_without_lines', 'error', count(*), min(o.order_number),
               'sales orders with no line (a line cannot lack its order: foreign key)'
          FROM inventory.sales_orders o
         WHERE NOT EXISTS (SELECT 1 FROM inventory.sales_order_lines l WHERE l.sales_order_id = o.sales_order_id)
        UNION ALL
        SELECT 'purchase_orders_without_lines', 'error', count(*), min(po.po_number),
               'purchase orders past draft with no line'
          FROM inventory.purchase_orders po
         WHERE po.status NOT IN ('draft', 'cancelled')
           AND NOT EXISTS (SELECT 1 FROM inventory.purchase_order_lines l WHERE l.purchase_order_id = po.purchase_order_id)
        UNION ALL
        SELECT 'fulfilled_orders_without_movements', 'error', count(*), min(o.order_number),
               'fulfilled sales orders whose stock never moved (no sale movement)'
          FROM inventory.sales_orders o
         WHERE o.status = 'fulfilled'
           AND NOT EXISTS (SELECT 1 FROM inventory.stock_movements m
                            WHERE m.sales_order_id = o.sales_order_id AND m.kind = 'sale')
        UNION ALL
        SELECT 'partner_logins_without_role', 'error', count(*), min(pl.login::text),
               'partner bindings to a login that no longer exists'
          FROM inventory.partner_logins pl
         WHERE NOT EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolname = pl.login)
        UNION ALL
        -- Duplicates that only case, spacing or punctuation tell apart.
        SELECT 'duplicate_skus', 'warning', count(*), min(g.members), 'SKUs equal but for case, spaces, - and _'
          FROM (SELECT string_agg(p.sku, ', ' ORDER BY p.sku) AS members
                  FROM inventory.products p
                 GROUP BY lower(regexp_replace(p.sku, '[\s_-]', '', 'g')) HAVING count(*) > 1) g
        UNION ALL
        SELECT 'duplicate_product_names', 'warning', count(*), min(g.members),
               'active products with the same name (ignoring case and spacing)'
          FROM (SELECT string_agg(p.sku, ', ' ORDER BY p.sku) AS members
                  FROM inventory.products p WHERE p.active
                 GROUP BY lower(regexp_replace(btrim(p.name), '\s+', ' ', 'g')) HAVING count(*) > 1) g
        UNION ALL
        SELECT 'duplicate_reseller_names', 'warning', count(*), min(g.members),
               'resellers with the same name (ignoring case and spacing)'
          FROM (SELECT string_agg(r.code, ', ' ORDER BY r.code) AS members
                  FROM inventory.resellers r
                 GROUP BY lower(regexp_replace(btrim(r.name), '\s+', ' ', 'g')) HAVING count(*) > 1) g
        UNION ALL
        SELECT 'duplicate_supplier_names', 'warning', count(*), min(g.members),
               'suppliers with the same name (ignoring case and spacing)'
          FROM (SELECT string_agg(s.code, ', ' ORDER BY s.code) AS members
                  FROM inventory.suppliers s
                 GROUP BY lower(regexp_replace(btrim(s.name), '\s+', ' ', 'g')) HAVING count(*) > 1) g
        UNION ALL
        -- Values present but meaningless.
        SELECT 'products_without_category', 'warning', count(*), min(p.sku),
               'products whose category is missing or a placeholder (N/A, unknown, -, ...)'
          FROM inventory.products p
         WHERE p.category IS NULL
            OR lower(btrim(p.category)) IN ('', '-', '?', 'n/a', 'na', 'none', 'null', 'unknown', 'tbd', 'misc')
        UNION ALL
        SELECT 'products_without_price', 'warning', count(*), min(p.sku),
               'active products with no list price or no unit cost (zero)'
          FROM inventory.products p
         WHERE p.active AND (p.list_price IS NULL OR p.list_price = 0 OR p.unit_cost IS NULL OR p.unit_cost = 0)
        UNION ALL
        SELECT 'products_priced_below_cost', 'warning', count(*), min(p.sku),
               'active products whose list price is below their unit cost'
          FROM inventory.products p
         WHERE p.active AND p.list_price < p.unit_cost
        UNION ALL
        SELECT 'products_without_supplier', 'warning', count(*), min(p.sku),
               'active products with no preferred supplier to reorder from'
          FROM inventory.products p
         WHERE p.active AND p.preferred_supplier_id IS NULL
    )
    SELECT f.rule, f.severity, f.n, f.example, f.description
      FROM findings f
     WHERE f.n > 0
     ORDER BY CASE f.severity WHEN 'error' THEN 0 ELSE 1 END, f.rule;
END
$$;
