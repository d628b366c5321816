-- Insufficient stock, said in terms the caller may see (issue 14, finding 7).
--
-- 0002's require_available told every caller the figures: a reseller whose
-- api.submit_order could not be served learnt what any warehouse it named
-- held and how much other partners had reserved there, which its row-level
-- security never shows it. Now the figures are given only to a login that may
-- read availability anyway (EXECUTE on api.stock_status: the departments, and
-- superusers); everyone else is told which sku, which warehouse and the
-- quantity they asked for, and what to do. The SQLSTATE (SO003) is unchanged.
--
-- Applied as inventory_owner.

CREATE OR REPLACE FUNCTION inventory.require_available(p_product integer, p_warehouse smallint, p_quantity integer)
RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_on_hand integer;
    v_reserved integer;
    v_sku text;
    v_code text;
BEGIN
    SELECT l.on_hand, l.reserved INTO v_on_hand, v_reserved FROM inventory.lock_level(p_product, p_warehouse) l;
    IF v_on_hand - v_reserved >= p_quantity THEN
        RETURN;
    END IF;
    SELECT sku INTO v_sku FROM inventory.products WHERE product_id = p_product;
    SELECT code INTO v_code FROM inventory.warehouses WHERE warehouse_id = p_warehouse;
    -- session_user: inside the api's SECURITY DEFINER functions current_user
    -- is the owner.
    IF has_function_privilege(session_user, 'api.stock_status(text)', 'EXECUTE') THEN
        PERFORM inventory.fail('SO003',
            format('sku %s in warehouse %s has %s, asked %s', v_sku, v_code, v_on_hand - v_reserved, p_quantity),
            CASE WHEN v_reserved > 0 THEN format('%s more are reserved for submitted orders', v_reserved) END);
    END IF;
    PERFORM inventory.fail('SO003',
        format('sku %s in warehouse %s cannot supply the %s asked for', v_sku, v_code, p_quantity),
        'order a smaller quantity, or from another warehouse');
END
$$;
