-- An order file imported by a partner login is that partner's own, at the
-- catalogue's prices.
--
-- api.import_order_lines (0003) takes each line's reseller and unit price from
-- the file: right for the etl login of Distributech, which loads resellers'
-- files as they come, but a login bound to a reseller in
-- inventory.partner_logins that is also given etl (a partner's own upload
-- program) could book orders to another reseller, or at a price of its own
-- choosing. Such a login now imports only lines naming its own reseller
-- (any other line refuses the whole batch, SQLSTATE 42501, naming the line),
-- priced from inventory.products.list_price whatever the file says, as
-- api.submit_order prices a partner's orders. A login bound to a supplier
-- imports nothing. A partner's rejected lines say the stock is short, not
-- how much the warehouse holds. Logins bound to no partner are unchanged.
--
-- The 0003 function keeps its body, renamed inventory.load_order_lines and
-- callable by its owner only; api.import_order_lines checks, then calls it.
-- Released migrations are never edited.

ALTER FUNCTION api.import_order_lines(text, bigint[], text[], date[], text[], text[], integer[], numeric[], text)
    RENAME TO load_order_lines;
ALTER FUNCTION api.load_order_lines(text, bigint[], text[], date[], text[], text[], integer[], numeric[], text)
    SET SCHEMA inventory;
-- Its EXECUTE grants went with it: nobody but its owner calls it now.
DO $$
DECLARE
    v_grantee text;
BEGIN
    REVOKE ALL ON FUNCTION
        inventory.load_order_lines(text, bigint[], text[], date[], text[], text[], integer[], numeric[], text)
        FROM PUBLIC;
    FOR v_grantee IN
        SELECT DISTINCT a.grantee::regrole::text
          FROM pg_catalog.pg_proc p, pg_catalog.aclexplode(p.proacl) a
         WHERE p.oid = 'inventory.load_order_lines(text, bigint[], text[], date[], text[], text[], integer[], numeric[], text)'::regprocedure
           AND a.grantee <> 0 AND a.grantee <> p.proowner
    LOOP
        EXECUTE format('REVOKE ALL ON FUNCTION inventory.load_order_lines(text, bigint[], text[], date[], text[], '
                       'text[], integer[], numeric[], text) FROM %s', v_grantee);
    END LOOP;
END
$$;

CREATE FUNCTION api.import_order_lines(
    p_source       text,
    p_line_numbers bigint[],
    p_order_refs   text[],
    p_order_dates  date[],
    p_resellers    text[],
    p_skus         text[],
    p_quantities   integer[],
    p_unit_prices  numeric[],
    p_warehouse    text DEFAULT NULL)
RETURNS TABLE (line_number bigint, outcome text, detail text)
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_bound boolean;
    v_reseller integer;
    v_code text;
    v_line bigint;
    v_named text;
BEGIN
    PERFORM inventory.require_etl();
    SELECT true, b.reseller_id INTO v_bound, v_reseller
      FROM inventory.partner_logins b WHERE b.login OPERATOR(pg_catalog.=) SESSION_USER;
    IF v_bound AND v_reseller IS NULL THEN
        PERFORM inventory.fail('42501',
            format('login %s is bound to a supplier: it cannot import reseller orders', SESSION_USER),
            'import order files as an etl login bound to no partner');
    END IF;
    IF v_bound THEN
        SELECT r.code INTO v_code FROM inventory.resellers r WHERE r.reseller_id OPERATOR(pg_catalog.=) v_reseller;
        -- 1. Every line is the bound reseller's, or nothing is imported.
        SELECT i.n, i.r INTO v_line, v_named
          FROM unnest(p_line_numbers, p_resellers) AS i(n, r)
         WHERE i.r IS DISTINCT FROM v_code
         ORDER BY i.n
         LIMIT 1;
        IF FOUND THEN
            PERFORM inventory.fail('42501',
                format('login %s is bound to reseller %s and imports only its orders: line %s names reseller %s',
                       SESSION_USER, v_code, v_line, coalesce(v_named, 'NULL')),
                format('remove the lines of other resellers, or have an etl login bound to no partner import the file'));
        END IF;
        -- 2. The catalogue's price, whatever the file says (an unknown sku
        -- keeps the file's: the line is rejected as unknown_sku).
        p_unit_prices := ARRAY(
            SELECT coalesce(p.list_price, u.price)
              FROM pg_catalog.unnest(p_unit_prices) WITH ORDINALITY AS u(price, n)
              LEFT JOIN inventory.products p ON p.sku OPERATOR(pg_catalog.=) p_skus[u.n]
             ORDER BY u.n);
    END IF;
    -- 3. A partner learns what it asked, not what the warehouse holds
    -- (as api.submit_order's refusals, 0008), unless it may read stock.
    RETURN QUERY
    SELECT l.line_number, l.outcome,
           CASE WHEN v_bound AND l.outcome OPERATOR(pg_catalog.=) 'insufficient_stock'
                     AND NOT pg_catalog.has_function_privilege(SESSION_USER, 'api.stock_status(text)', 'EXECUTE')
                THEN 'the warehouse cannot serve the quantity asked by this and earlier lines'
                ELSE l.detail END
      FROM inventory.load_order_lines(p_source, p_line_numbers, p_order_refs, p_order_dates, p_resellers, p_skus,
                                      p_quantities, p_unit_prices, p_warehouse) l;
END
$$;
REVOKE ALL ON FUNCTION
    api.import_order_lines(text, bigint[], text[], date[], text[], text[], integer[], numeric[], text)
    FROM PUBLIC;
