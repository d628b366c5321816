-- The audit log, its hash chain, and the api functions departments and
-- partners call. Applied as inventory_owner; EXECUTE grants are declared in
-- roles/grants.toml (PUBLIC gets none).
--
-- Errors raised by the api use stable SQLSTATEs (docs/procedures.md):
--   SO001 unknown sku, warehouse, reseller, supplier or order
--   SO002 a quantity that must be positive is not
--   SO003 insufficient stock
--   SO004 a purchase or sales order in the wrong state for the operation
--   SO005 any other invalid argument
--   42501 a partner login not bound to a partner

-- Audit ------------------------------------------------------------------

CREATE TABLE audit.events (
    event_id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_at      timestamptz NOT NULL,
    login            name NOT NULL,
    acting_role      text,
    function_name    text NOT NULL,
    arguments        jsonb NOT NULL,
    result           jsonb,
    client_addr      inet,
    application_name text,
    txid             xid8 NOT NULL
);
-- Events arrive in time order: a BRIN index costs writers next to nothing.
CREATE INDEX events_occurred_at_idx ON audit.events USING brin (occurred_at);

-- The hash chain, sealed in blocks. Events are chained in id order: position
-- n holds sha256(chain(n-1) || event_hash(n)), from 32 zero bytes, where
-- event_hash is sha256 of the event's canonical text (audit.canonical). Each
-- seal records the ids and hashes of the events it chained and the chain's
-- value after the last one (head), so a verifier can name a missing or
-- rewritten event exactly. Writers do no hashing: the sealer does, once.
CREATE TABLE audit.seals (
    seal_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    first_position bigint NOT NULL UNIQUE CHECK (first_position > 0),
    event_ids      bigint[] NOT NULL,
    event_hashes   bytea[] NOT NULL,
    head           bytea NOT NULL,
    sealed_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    CHECK (cardinality(event_ids) > 0 AND cardinality(event_ids) = cardinality(event_hashes))
);

-- Where sealing stands. Events are chained in id order, and only up to a
-- horizon: the last id allocated when the previous seal ran, once every
-- transaction that was running then has finished. No transaction can then
-- still hold a smaller id, so no late commit ever lands behind the chain.
CREATE TABLE audit.seal_state (
    singleton      boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    sealed_through bigint NOT NULL DEFAULT 0,
    position       bigint NOT NULL DEFAULT 0,
    head           bytea NOT NULL DEFAULT '\x0000000000000000000000000000000000000000000000000000000000000000',
    horizon_id     bigint NOT NULL DEFAULT 0,
    horizon_xmax   xid8 NOT NULL DEFAULT '0'
);
INSERT INTO audit.seal_state DEFAULT VALUES;

CREATE FUNCTION audit.reject_change() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog
AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % is not allowed', TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON audit.events
    FOR EACH ROW EXECUTE FUNCTION audit.reject_change();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON audit.events
    FOR EACH STATEMENT EXECUTE FUNCTION audit.reject_change();
CREATE TRIGGER seals_append_only BEFORE UPDATE OR DELETE ON audit.seals
    FOR EACH ROW EXECUTE FUNCTION audit.reject_change();
CREATE TRIGGER seals_no_truncate BEFORE TRUNCATE ON audit.seals
    FOR EACH STATEMENT EXECUTE FUNCTION audit.reject_change();

-- The bytes an event's hash covers: a JSON array of its fields, rendered by
-- the server (jsonb output is canonical), time in microseconds since the epoch.
-- Internal and owner-only; every name is qualified, so it needs no pinned
-- search_path and the planner can inline it.
CREATE FUNCTION audit.canonical(e audit.events) RETURNS text
    LANGUAGE sql STABLE
AS $$
    SELECT pg_catalog.jsonb_build_array(
        e.event_id::pg_catalog.text,
        pg_catalog.trunc(pg_catalog.date_part('epoch', e.occurred_at) OPERATOR(pg_catalog.*) 1000000)::pg_catalog.int8::pg_catalog.text,
        e.login::pg_catalog.text,
        e.acting_role,
        e.function_name,
        e.arguments,
        e.result,
        pg_catalog.host(e.client_addr),
        e.application_name,
        e.txid::pg_catalog.text
    )::pg_catalog.text
$$;

-- Chain every event up to the horizon once it is safe, then set the next
-- horizon: an event is sealed by the second seal after it was recorded.
-- One sealer at a time (a transaction-scoped advisory lock, tried, never
-- waited for); writers never take it. Skipped outside READ COMMITTED, whose
-- fresh snapshots the horizon relies on.
CREATE FUNCTION audit.seal() RETURNS integer
    LANGUAGE plpgsql
    SET search_path = pg_catalog
AS $$
DECLARE
    st audit.seal_state;
    v_sealed integer := 0;
    v_ids bigint[];
    v_hashes bytea[];
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed'
       OR NOT pg_try_advisory_xact_lock(8315370915117330001) THEN
        RETURN 0;
    END IF;
    SELECT * INTO st FROM audit.seal_state;
    IF st.horizon_id > st.sealed_through
       AND pg_snapshot_xmin(pg_current_snapshot()) >= st.horizon_xmax THEN
        LOOP
            SELECT array_agg(e.event_id ORDER BY e.event_id),
                   array_agg(sha256(convert_to(audit.canonical(e), 'UTF8')) ORDER BY e.event_id)
              INTO v_ids, v_hashes
              FROM (SELECT * FROM audit.events
                     WHERE event_id > st.sealed_through AND event_id <= st.horizon_id
                     ORDER BY event_id LIMIT 10000) e;
            EXIT WHEN v_ids IS NULL;
            FOR i IN 1 .. cardinality(v_hashes) LOOP
                st.head := sha256(st.head || v_hashes[i]);
            END LOOP;
            INSERT INTO audit.seals (first_position, event_ids, event_hashes, head)
            VALUES (st.position + 1, v_ids, v_hashes, st.head);
            st.position := st.position + cardinality(v_ids);
            st.sealed_through := v_ids[cardinality(v_ids)];
            v_sealed := v_sealed + cardinality(v_ids);
        END LOOP;
        st.sealed_through := st.horizon_id;
    END IF;
    IF st.horizon_id <= st.sealed_through THEN
        -- The last id handed out, then a snapshot: every transaction holding
        -- an id up to it had its transaction id before this snapshot's xmax.
        SELECT last_value INTO st.horizon_id FROM audit.events_event_id_seq;
        st.horizon_xmax := pg_snapshot_xmax(pg_current_snapshot());
    END IF;
    UPDATE audit.seal_state
       SET sealed_through = st.sealed_through, position = st.position, head = st.head,
           horizon_id = st.horizon_id, horizon_xmax = st.horizon_xmax;
    RETURN v_sealed;
END
$$;

-- Record one call, in the caller's transaction: committed with the change or
-- rolled back with it. Every 256th event also tries to seal (scheduled seals,
-- `stockops audit seal`, verify and backups seal too). On the path of
-- every write, so kept lean: one statement, no hashing (the sealer hashes),
-- no search_path switch (owner-only, every name qualified), and the acting
-- role from pg_has_role, which reads PostgreSQL's cached membership lists.
-- The acting role is the managed group (or groups) of roles/roles.toml the
-- login belongs to, 'superuser' for a superuser; a test holds this list and
-- the declaration together.
CREATE FUNCTION audit.record(p_function text, p_arguments jsonb, p_result jsonb) RETURNS bigint
    LANGUAGE plpgsql
AS $$
DECLARE
    v_id pg_catalog.int8;
BEGIN
    -- A transaction id before the event id: the seal horizon relies on every
    -- holder of an event id already having one.
    PERFORM pg_catalog.pg_current_xact_id();
    INSERT INTO audit.events (occurred_at, login, acting_role, function_name, arguments, result, client_addr,
                              application_name, txid)
    SELECT pg_catalog.clock_timestamp(), SESSION_USER,
           CASE WHEN pg_catalog.cardinality(g.groups) > 1
                     AND (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) SESSION_USER)
                THEN 'superuser'
                ELSE NULLIF(pg_catalog.array_to_string(g.groups, ','), '') END,
           p_function, COALESCE(p_arguments, '{}'::pg_catalog.jsonb), p_result, pg_catalog.inet_client_addr(),
           NULLIF(pg_catalog.current_setting('application_name', true), ''), pg_catalog.pg_current_xact_id()
      FROM (SELECT ARRAY(SELECT x FROM pg_catalog.unnest('{dept_audit,dept_purchasing,dept_reporting,dept_sales,dept_stock,reseller,supplier}'::pg_catalog.text[]) AS x
                          WHERE pg_catalog.pg_has_role(SESSION_USER, x, 'MEMBER')) AS groups) g
    RETURNING event_id INTO v_id;
    IF v_id OPERATOR(pg_catalog.%) 256 OPERATOR(pg_catalog.=) 0 THEN
        PERFORM audit.seal();
    END IF;
    RETURN v_id;
END
$$;

-- Internal helpers (owner only) ------------------------------------------

CREATE FUNCTION inventory.fail(p_code text, p_message text, p_hint text DEFAULT NULL) RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog
AS $$
BEGIN
    IF p_hint IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = p_code, MESSAGE = p_message;
    END IF;
    RAISE EXCEPTION USING ERRCODE = p_code, MESSAGE = p_message, HINT = p_hint;
END
$$;

CREATE FUNCTION inventory.product_id(p_sku text) RETURNS integer
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog
AS $$
DECLARE v integer;
BEGIN
    SELECT product_id INTO v FROM inventory.products WHERE sku = p_sku;
    IF NOT FOUND THEN
        PERFORM inventory.fail('SO001', format('unknown sku %s', coalesce(quote_literal(p_sku), 'NULL')));
    END IF;
    RETURN v;
END
$$;

CREATE FUNCTION inventory.warehouse_id(p_code text) RETURNS smallint
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog
AS $$
DECLARE v smallint;
BEGIN
    SELECT warehouse_id INTO v FROM inventory.warehouses WHERE code = p_code AND active;
    IF NOT FOUND THEN
        PERFORM inventory.fail('SO001', format('unknown warehouse %s', coalesce(quote_literal(p_code), 'NULL')));
    END IF;
    RETURN v;
END
$$;

CREATE FUNCTION inventory.reseller_id(p_code text) RETURNS integer
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog
AS $$
DECLARE v integer;
BEGIN
    SELECT reseller_id INTO v FROM inventory.resellers WHERE code = p_code AND active;
    IF NOT FOUND THEN
        PERFORM inventory.fail('SO001', format('unknown reseller %s', coalesce(quote_literal(p_code), 'NULL')));
    END IF;
    RETURN v;
END
$$;

CREATE FUNCTION inventory.supplier_id(p_code text) RETURNS integer
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog
AS $$
DECLARE v integer;
BEGIN
    SELECT supplier_id INTO v FROM inventory.suppliers WHERE code = p_code AND active;
    IF NOT FOUND THEN
        PERFORM inventory.fail('SO001', format('unknown supplier %s', coalesce(quote_literal(p_code), 'NULL')));
    END IF;
    RETURN v;
END
$$;

CREATE FUNCTION inventory.require_positive(p_name text, p_value integer) RETURNS void
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog
AS $$
BEGIN
    IF p_value IS NULL OR p_value <= 0 THEN
        PERFORM inventory.fail('SO002', format('%s must be a positive quantity, got %s', p_name, coalesce(p_value::text, 'NULL')));
    END IF;
END
$$;

CREATE FUNCTION inventory.require_text(p_name text, p_value text) RETURNS void
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog
AS $$
BEGIN
    IF p_value IS NULL OR btrim(p_value) = '' THEN
        PERFORM inventory.fail('SO005', format('%s is required', p_name));
    END IF;
END
$$;

-- Lock the level row of (product, warehouse), creating it at zero if needed.
-- Every writer locks levels through here, in (product, warehouse) order.
CREATE FUNCTION inventory.lock_level(p_product integer, p_warehouse smallint,
                                     OUT on_hand integer, OUT reserved integer)
    LANGUAGE plpgsql
    SET search_path = pg_catalog
AS $$
BEGIN
    SELECT l.on_hand, l.reserved INTO on_hand, reserved
      FROM inventory.stock_levels l
     WHERE l.product_id = p_product AND l.warehouse_id = p_warehouse
       FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO inventory.stock_levels (product_id, warehouse_id)
        VALUES (p_product, p_warehouse) ON CONFLICT DO NOTHING;
        SELECT l.on_hand, l.reserved INTO on_hand, reserved
          FROM inventory.stock_levels l
         WHERE l.product_id = p_product AND l.warehouse_id = p_warehouse
           FOR UPDATE;
    END IF;
END
$$;

-- Lock a level and check that `p_quantity` is available (on hand, not reserved).
CREATE FUNCTION inventory.require_available(p_product integer, p_warehouse smallint, p_quantity integer) RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog
AS $$
DECLARE
    v_on_hand integer;
    v_reserved integer;
    v_sku text;
    v_code text;
BEGIN
    SELECT l.on_hand, l.reserved INTO v_on_hand, v_reserved FROM inventory.lock_level(p_product, p_warehouse) l;
    IF v_on_hand - v_reserved < p_quantity THEN
        SELECT sku INTO v_sku FROM inventory.products WHERE product_id = p_product;
        SELECT code INTO v_code FROM inventory.warehouses WHERE warehouse_id = p_warehouse;
        PERFORM inventory.fail('SO003',
            format('sku %s in warehouse %s has %s, asked %s', v_sku, v_code, v_on_hand - v_reserved, p_quantity),
            CASE WHEN v_reserved > 0 THEN format('%s more are reserved for submitted orders', v_reserved) END);
    END IF;
END
$$;

CREATE FUNCTION inventory.reseller_of_session() RETURNS integer
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog
AS $$
DECLARE v integer;
BEGIN
    SELECT reseller_id INTO v FROM inventory.partner_logins WHERE login = session_user AND reseller_id IS NOT NULL;
    IF NOT FOUND THEN
        PERFORM inventory.fail('42501', format('login %s is not bound to a reseller', session_user),
            'bind it with: stockops users add NAME --role reseller --reseller CODE');
    END IF;
    RETURN v;
END
$$;

CREATE FUNCTION inventory.supplier_of_session() RETURNS integer
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog
AS $$
DECLARE v integer;
BEGIN
    SELECT supplier_id INTO v FROM inventory.partner_logins WHERE login = session_user AND supplier_id IS NOT NULL;
    IF NOT FOUND THEN
        PERFORM inventory.fail('42501', format('login %s is not bound to a supplier', session_user),
            'bind it with: stockops users add NAME --role supplier --supplier CODE');
    END IF;
    RETURN v;
END
$$;

CREATE SEQUENCE inventory.transfer_ref_seq;

-- Order lines from jsonb: [{"sku": "...", "quantity": n, ...}], validated.
CREATE FUNCTION inventory.parse_lines(p_lines jsonb)
RETURNS TABLE (line_no smallint, product_id integer, quantity integer, unit_cost numeric)
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog
AS $$
DECLARE
    v_item jsonb;
    v_n integer := 0;
    v_qty numeric;
    v_seen integer[] := '{}';
    v_cost numeric;
BEGIN
    IF p_lines IS NULL OR jsonb_typeof(p_lines) <> 'array' OR jsonb_array_length(p_lines) = 0 THEN
        PERFORM inventory.fail('SO005', 'p_lines must be a non-empty JSON array of {"sku": ..., "quantity": ...}');
    END IF;
    FOR v_item IN SELECT value FROM jsonb_array_elements(p_lines) LOOP
        v_n := v_n + 1;
        IF jsonb_typeof(v_item) <> 'object' OR jsonb_typeof(v_item -> 'sku') <> 'string'
           OR jsonb_typeof(v_item -> 'quantity') <> 'number' THEN
            PERFORM inventory.fail('SO005', format('line %s must be {"sku": "...", "quantity": n}, got %s', v_n, v_item));
        END IF;
        v_qty := (v_item ->> 'quantity')::numeric;
        IF v_qty <> trunc(v_qty) OR v_qty <= 0 OR v_qty > 1000000 THEN
            PERFORM inventory.fail('SO002', format('line %s: quantity must be a positive whole number, got %s', v_n, v_item -> 'quantity'));
        END IF;
        line_no := v_n;
        product_id := inventory.product_id(v_item ->> 'sku');
        IF product_id = ANY (v_seen) THEN
            PERFORM inventory.fail('SO005', format('line %s: sku %s appears twice', v_n, v_item ->> 'sku'));
        END IF;
        v_seen := v_seen || product_id;
        quantity := v_qty::integer;
        v_cost := NULL;
        IF v_item ? 'unit_cost' THEN
            IF jsonb_typeof(v_item -> 'unit_cost') <> 'number' OR (v_item ->> 'unit_cost')::numeric < 0 THEN
                PERFORM inventory.fail('SO005', format('line %s: unit_cost must be a non-negative number', v_n));
            END IF;
            v_cost := (v_item ->> 'unit_cost')::numeric;
        END IF;
        unit_cost := v_cost;
        RETURN NEXT;
    END LOOP;
END
$$;

-- The sale itself, without its audit record: api.record_sale is this plus
-- audit.record. Owner only.
CREATE FUNCTION inventory.sell(p_reseller text, p_sku text, p_warehouse text, p_quantity integer, p_unit_price numeric)
RETURNS bigint
    LANGUAGE plpgsql
    SET search_path = pg_catalog
AS $$
DECLARE
    v_reseller integer := inventory.reseller_id(p_reseller);
    v_product integer := inventory.product_id(p_sku);
    v_warehouse smallint := inventory.warehouse_id(p_warehouse);
    v_price numeric := p_unit_price;
    v_id bigint;
BEGIN
    PERFORM inventory.require_positive('p_quantity', p_quantity);
    IF v_price IS NULL THEN
        SELECT list_price INTO v_price FROM inventory.products WHERE product_id = v_product;
    ELSIF v_price < 0 THEN
        PERFORM inventory.fail('SO005', format('p_unit_price must not be negative, got %s', v_price));
    END IF;
    PERFORM inventory.require_available(v_product, v_warehouse, p_quantity);
    v_id := nextval('inventory.sales_orders_sales_order_id_seq');
    INSERT INTO inventory.sales_orders (sales_order_id, order_number, reseller_id, warehouse_id, ordered_at, status, source)
    VALUES (v_id, format('SO-%s-%s', to_char(now(), 'YYYY'), lpad(v_id::text, 7, '0')), v_reseller, v_warehouse,
            now(), 'fulfilled', 'api');
    INSERT INTO inventory.sales_order_lines (sales_order_id, line_no, product_id, quantity, unit_price)
    VALUES (v_id, 1, v_product, p_quantity, v_price);
    INSERT INTO inventory.stock_movements (product_id, warehouse_id, kind, quantity, sales_order_id)
    VALUES (v_product, v_warehouse, 'sale', -p_quantity, v_id);
    RETURN v_id;
END
$$;

-- Stock (dept_stock) -------------------------------------------------------

CREATE FUNCTION api.receive_stock(p_sku text, p_warehouse text, p_quantity integer, p_po_number text DEFAULT NULL)
RETURNS bigint
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog
AS $$
DECLARE
    v_product integer := inventory.product_id(p_sku);
    v_warehouse smallint := inventory.warehouse_id(p_warehouse);
    v_po inventory.purchase_orders;
    v_line inventory.purchase_order_lines;
    v_movement bigint;
BEGIN
    PERFORM inventory.require_positive('p_quantity', p_quantity);
    IF p_po_number IS NOT NULL THEN
        SELECT * INTO v_po FROM inventory.purchase_orders WHERE po_number = p_po_number FOR UPDATE;
        IF NOT FOUND THEN
            PERFORM inventory.fail('SO001', format('unknown purchase order %s', quote_literal(p_po_number)));
        END IF;
        IF v_po.status NOT IN ('sent', 'partially_received') THEN
            PERFORM inventory.fail('SO004', format('purchase order %s is %s; only sent or partially received orders can be received', p_po_number, v_po.status));
        END IF;
        IF v_po.warehouse_id <> v_warehouse THEN
            PERFORM inventory.fail('SO005', format('purchase order %s is for another warehouse than %s', p_po_number, p_warehouse));
        END IF;
        SELECT * INTO v_line FROM inventory.purchase_order_lines
         WHERE purchase_order_id = v_po.purchase_order_id AND product_id = v_product FOR UPDATE;
        IF NOT FOUND THEN
            PERFORM inventory.fail('SO005', format('purchase order %s has no line for sku %s', p_po_number, p_sku));
        END IF;
        IF v_line.quantity_received + p_quantity > v_line.quantity_ordered THEN
            PERFORM inventory.fail('SO005', format('purchase order %s has %s of sku %s left to receive, got %s',
                p_po_number, v_line.quantity_ordered - v_line.quantity_received, p_sku, p_quantity));
        END IF;
        UPDATE inventory.purchase_order_lines SET quantity_received = quantity_received + p_quantity
         WHERE purchase_order_id = v_line.purchase_order_id AND line_no = v_line.line_no;
        UPDATE inventory.purchase_orders po
           SET status = CASE WHEN done THEN 'received' ELSE 'partially_received' END,
               received_at = CASE WHEN done THEN now() END
          FROM (SELECT bool_and(quantity_received = quantity_ordered) AS done
                  FROM inventory.purchase_order_lines WHERE purchase_order_id = v_po.purchase_order_id) d
         WHERE po.purchase_order_id = v_po.purchase_order_id;
    END IF;
    PERFORM inventory.lock_level(v_product, v_warehouse);
    INSERT INTO inventory.stock_movements (product_id, warehouse_id, kind, quantity, purchase_order_id)
    VALUES (v_product, v_warehouse, 'receipt', p_quantity, v_po.purchase_order_id)
    RETURNING movement_id INTO v_movement;
    PERFORM audit.record('api.receive_stock',
        jsonb_build_object('p_sku', p_sku, 'p_warehouse', p_warehouse, 'p_quantity', p_quantity, 'p_po_number', p_po_number),
        jsonb_build_object('movement_id', v_movement));
    RETURN v_movement;
END
$$;

CREATE FUNCTION api.adjust_stock(p_sku text, p_warehouse text, p_delta integer, p_reason text)
RETURNS bigint
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog
AS $$
DECLARE
    v_product integer := inventory.product_id(p_sku);
    v_warehouse smallint := inventory.warehouse_id(p_warehouse);
    v_movement bigint;
BEGIN
    IF p_delta IS NULL OR p_delta = 0 THEN
        PERFORM inventory.fail('SO002', format('p_delta must be a non-zero quantity, got %s', coalesce(p_delta::text, 'NULL')));
    END IF;
    PERFORM inventory.require_text('p_reason', p_reason);
    IF p_delta < 0 THEN
        PERFORM inventory.require_available(v_product, v_warehouse, -p_delta);
    ELSE
        PERFORM inventory.lock_level(v_product, v_warehouse);
    END IF;
    INSERT INTO inventory.stock_movements (product_id, warehouse_id, kind, quantity, reason)
    VALUES (v_product, v_warehouse, 'adjustment', p_delta, p_reason)
    RETURNING movement_id INTO v_movement;
    PERFORM audit.record('api.adjust_stock',
        jsonb_build_object('p_sku', p_sku, 'p_warehouse', p_warehouse, 'p_delta', p_delta, 'p_reason', p_reason),
        jsonb_build_object('movement_id', v_movement));
    RETURN v_movement;
END
$$;

CREATE FUNCTION api.transfer_stock(p_sku text, p_from_warehouse text, p_to_warehouse text, p_quantity integer)
RETURNS bigint
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog
AS $$
DECLARE
    v_product integer := inventory.product_id(p_sku);
    v_from smallint := inventory.warehouse_id(p_from_warehouse);
    v_to smallint := inventory.warehouse_id(p_to_warehouse);
    v_ref bigint;
BEGIN
    PERFORM inventory.require_positive('p_quantity', p_quantity);
    IF v_from = v_to THEN
        PERFORM inventory.fail('SO005', format('p_from_warehouse and p_to_warehouse are both %s', p_from_warehouse));
    END IF;
    -- Lock both levels in warehouse order, whatever the direction: two
    -- opposite transfers never wait on each other in a cycle.
    IF v_from < v_to THEN
        PERFORM inventory.require_available(v_product, v_from, p_quantity);
        PERFORM inventory.lock_level(v_product, v_to);
    ELSE
        PERFORM inventory.lock_level(v_product, v_to);
        PERFORM inventory.require_available(v_product, v_from, p_quantity);
    END IF;
    v_ref := nextval('inventory.transfer_ref_seq');
    INSERT INTO inventory.stock_movements (product_id, warehouse_id, kind, quantity, transfer_ref)
    VALUES (v_product, v_from, 'transfer_out', -p_quantity, v_ref),
           (v_product, v_to, 'transfer_in', p_quantity, v_ref);
    PERFORM audit.record('api.transfer_stock',
        jsonb_build_object('p_sku', p_sku, 'p_from_warehouse', p_from_warehouse, 'p_to_warehouse', p_to_warehouse,
                           'p_quantity', p_quantity),
        jsonb_build_object('transfer_ref', v_ref));
    RETURN v_ref;
END
$$;

-- Sales (dept_sales) -------------------------------------------------------

CREATE FUNCTION api.record_sale(p_reseller text, p_sku text, p_warehouse text, p_quantity integer,
                                p_unit_price numeric DEFAULT NULL)
RETURNS bigint
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog
AS $$
DECLARE
    v_id bigint := inventory.sell(p_reseller, p_sku, p_warehouse, p_quantity, p_unit_price);
BEGIN
    PERFORM audit.record('api.record_sale',
        jsonb_build_object('p_reseller', p_reseller, 'p_sku', p_sku, 'p_warehouse', p_warehouse,
                           'p_quantity', p_quantity, 'p_unit_price', p_unit_price),
        jsonb_build_object('sales_order_id', v_id));
    RETURN v_id;
END
$$;

CREATE FUNCTION api.record_return(p_order_number text, p_sku text, p_quantity integer, p_reason text DEFAULT NULL)
RETURNS bigint
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog
AS $$
DECLARE
    v_order inventory.sales_orders;
    v_product integer := inventory.product_id(p_sku);
    v_sold integer;
    v_returned integer;
    v_movement bigint;
BEGIN
    PERFORM inventory.require_positive('p_quantity', p_quantity);
    SELECT * INTO v_order FROM inventory.sales_orders WHERE order_number = p_order_number FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM inventory.fail('SO001', format('unknown sales order %s', coalesce(quote_literal(p_order_number), 'NULL')));
    END IF;
    IF v_order.status <> 'fulfilled' THEN
        PERFORM inventory.fail('SO004', format('sales order %s is %s; only fulfilled orders take returns', p_order_number, v_order.status));
    END IF;
    SELECT coalesce(sum(quantity), 0) INTO v_sold FROM inventory.sales_order_lines
     WHERE sales_order_id = v_order.sales_order_id AND product_id = v_product;
    SELECT coalesce(sum(quantity), 0) INTO v_returned FROM inventory.stock_movements
     WHERE sales_order_id = v_order.sales_order_id AND product_id = v_product AND kind = 'return';
    IF v_returned + p_quantity > v_sold THEN
        PERFORM inventory.fail('SO005', format('sales order %s has %s of sku %s left to return, asked %s',
            p_order_number, v_sold - v_returned, p_sku, p_quantity));
    END IF;
    PERFORM inventory.lock_level(v_product, v_order.warehouse_id);
    INSERT INTO inventory.stock_movements (product_id, warehouse_id, kind, quantity, reason, sales_order_id)
    VALUES (v_product, v_order.warehouse_id, 'return', p_quantity, coalesce(p_reason, 'returned by reseller'), v_order.sales_order_id)
    RETURNING movement_id INTO v_movement;
    PERFORM audit.record('api.record_return',
        jsonb_build_object('p_order_number', p_order_number, 'p_sku', p_sku, 'p_quantity', p_quantity, 'p_reason', p_reason),
        jsonb_build_object('movement_id', v_movement));
    RETURN v_movement;
END
$$;

-- Turn a reseller's submitted order into a sale: its reservations become
-- sale movements.
CREATE FUNCTION api.fulfil_order(p_order_number text)
RETURNS text
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog
AS $$
DECLARE
    v_order inventory.sales_orders;
    r record;
BEGIN
    SELECT * INTO v_order FROM inventory.sales_orders WHERE order_number = p_order_number FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM inventory.fail('SO001', format('unknown sales order %s', coalesce(quote_literal(p_order_number), 'NULL')));
    END IF;
    IF v_order.status <> 'submitted' THEN
        PERFORM inventory.fail('SO004', format('sales order %s is %s; only submitted orders can be fulfilled', p_order_number, v_order.status));
    END IF;
    FOR r IN SELECT product_id, quantity FROM inventory.sales_order_lines
              WHERE sales_order_id = v_order.sales_order_id ORDER BY product_id LOOP
        PERFORM inventory.lock_level(r.product_id, v_order.warehouse_id);
        UPDATE inventory.stock_levels SET reserved = reserved - r.quantity
         WHERE product_id = r.product_id AND warehouse_id = v_order.warehouse_id;
    END LOOP;
    INSERT INTO inventory.stock_movements (product_id, warehouse_id, kind, quantity, sales_order_id)
    SELECT product_id, v_order.warehouse_id, 'sale', -quantity, v_order.sales_order_id
      FROM inventory.sales_order_lines WHERE sales_order_id = v_order.sales_order_id;
    UPDATE inventory.sales_orders SET status = 'fulfilled' WHERE sales_order_id = v_order.sales_order_id;
    PERFORM audit.record('api.fulfil_order', jsonb_build_object('p_order_number', p_order_number),
                         jsonb_build_object('status', 'fulfilled'));
    RETURN 'fulfilled';
END
$$;

-- Purchasing (dept_purchasing) ---------------------------------------------

CREATE FUNCTION api.create_purchase_order(p_supplier text, p_lines jsonb, p_warehouse text)
RETURNS text
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog
AS $$
DECLARE
    v_supplier integer := inventory.supplier_id(p_supplier);
    v_warehouse smallint := inventory.warehouse_id(p_warehouse);
    v_id integer;
    v_number text;
BEGIN
    v_id := nextval('inventory.purchase_orders_purchase_order_id_seq');
    v_number := format('PO-%s-%s', to_char(now(), 'YYYY'), lpad(v_id::text, 6, '0'));
    INSERT INTO inventory.purchase_orders (purchase_order_id, po_number, supplier_id, warehouse_id, status)
    VALUES (v_id, v_number, v_supplier, v_warehouse, 'draft');
    INSERT INTO inventory.purchase_order_lines (purchase_order_id, line_no, product_id, quantity_ordered, unit_cost)
    SELECT v_id, l.line_no, l.product_id, l.quantity, coalesce(l.unit_cost, p.unit_cost)
      FROM inventory.parse_lines(p_lines) l JOIN inventory.products p USING (product_id);
    PERFORM audit.record('api.create_purchase_order',
        jsonb_build_object('p_supplier', p_supplier, 'p_lines', p_lines, 'p_warehouse', p_warehouse),
        jsonb_build_object('po_number', v_number));
    RETURN v_number;
END
$$;

CREATE FUNCTION api.send_purchase_order(p_po_number text)
RETURNS date
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog
AS $$
DECLARE
    v_po inventory.purchase_orders;
    v_expected date;
BEGIN
    SELECT * INTO v_po FROM inventory.purchase_orders WHERE po_number = p_po_number FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM inventory.fail('SO001', format('unknown purchase order %s', coalesce(quote_literal(p_po_number), 'NULL')));
    END IF;
    IF v_po.status <> 'draft' THEN
        PERFORM inventory.fail('SO004', format('purchase order %s is %s; only drafts can be sent', p_po_number, v_po.status));
    END IF;
    SELECT current_date + s.lead_time_days INTO v_expected FROM inventory.suppliers s WHERE s.supplier_id = v_po.supplier_id;
    UPDATE inventory.purchase_orders SET status = 'sent', sent_at = now(), expected_date = v_expected
     WHERE purchase_order_id = v_po.purchase_order_id;
    PERFORM audit.record('api.send_purchase_order', jsonb_build_object('p_po_number', p_po_number),
                         jsonb_build_object('expected_date', v_expected));
    RETURN v_expected;
END
$$;

CREATE FUNCTION api.cancel_purchase_order(p_po_number text, p_reason text)
RETURNS text
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog
AS $$
DECLARE
    v_po inventory.purchase_orders;
BEGIN
    PERFORM inventory.require_text('p_reason', p_reason);
    SELECT * INTO v_po FROM inventory.purchase_orders WHERE po_number = p_po_number FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM inventory.fail('SO001', format('unknown purchase order %s', coalesce(quote_literal(p_po_number), 'NULL')));
    END IF;
    IF v_po.status NOT IN ('draft', 'sent') THEN
        PERFORM inventory.fail('SO004', format('purchase order %s is %s; only drafts and sent orders with nothing received can be cancelled',
            p_po_number, v_po.status));
    END IF;
    UPDATE inventory.purchase_orders SET status = 'cancelled', cancelled_at = now(), cancel_reason = p_reason
     WHERE purchase_order_id = v_po.purchase_order_id;
    PERFORM audit.record('api.cancel_purchase_order',
        jsonb_build_object('p_po_number', p_po_number, 'p_reason', p_reason), jsonb_build_object('status', 'cancelled'));
    RETURN 'cancelled';
END
$$;

-- Partners -------------------------------------------------------------------

CREATE FUNCTION api.my_orders()
RETURNS TABLE (order_number text, ordered_at timestamptz, status text, warehouse text,
               line_no smallint, sku text, quantity integer, unit_price numeric)
    LANGUAGE sql STABLE
    SECURITY DEFINER
    SET search_path = pg_catalog
AS $$
    SELECT o.order_number, o.ordered_at, o.status, w.code, l.line_no, p.sku, l.quantity, l.unit_price
      FROM inventory.sales_orders o
      JOIN inventory.sales_order_lines l USING (sales_order_id)
      JOIN inventory.products p USING (product_id)
      JOIN inventory.warehouses w ON w.warehouse_id = o.warehouse_id
     WHERE o.reseller_id = inventory.reseller_of_session()
     ORDER BY o.ordered_at DESC, o.order_number, l.line_no
$$;

CREATE FUNCTION api.submit_order(p_warehouse text, p_lines jsonb, p_reference text DEFAULT NULL)
RETURNS text
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog
AS $$
DECLARE
    v_reseller integer := inventory.reseller_of_session();
    v_warehouse smallint := inventory.warehouse_id(p_warehouse);
    v_id bigint;
    v_number text;
    r record;
BEGIN
    v_id := nextval('inventory.sales_orders_sales_order_id_seq');
    v_number := format('SO-%s-%s', to_char(now(), 'YYYY'), lpad(v_id::text, 7, '0'));
    INSERT INTO inventory.sales_orders (sales_order_id, order_number, reseller_id, warehouse_id, ordered_at, status, source, external_ref)
    VALUES (v_id, v_number, v_reseller, v_warehouse, now(), 'submitted', 'partner', p_reference);
    FOR r IN SELECT l.line_no, l.product_id, l.quantity, p.list_price
               FROM inventory.parse_lines(p_lines) l JOIN inventory.products p USING (product_id)
              ORDER BY l.product_id LOOP
        PERFORM inventory.require_available(r.product_id, v_warehouse, r.quantity);
        UPDATE inventory.stock_levels SET reserved = reserved + r.quantity
         WHERE product_id = r.product_id AND warehouse_id = v_warehouse;
        INSERT INTO inventory.sales_order_lines (sales_order_id, line_no, product_id, quantity, unit_price)
        VALUES (v_id, r.line_no, r.product_id, r.quantity, r.list_price);
    END LOOP;
    PERFORM audit.record('api.submit_order',
        jsonb_build_object('p_warehouse', p_warehouse, 'p_lines', p_lines, 'p_reference', p_reference),
        jsonb_build_object('order_number', v_number));
    RETURN v_number;
END
$$;

CREATE FUNCTION api.my_purchase_orders()
RETURNS TABLE (po_number text, status text, created_at timestamptz, sent_at timestamptz, confirmed_at timestamptz,
               expected_date date, warehouse text, line_no smallint, sku text, quantity_ordered integer,
               quantity_received integer)
    LANGUAGE sql STABLE
    SECURITY DEFINER
    SET search_path = pg_catalog
AS $$
    SELECT po.po_number, po.status, po.created_at, po.sent_at, po.confirmed_at, po.expected_date, w.code,
           l.line_no, p.sku, l.quantity_ordered, l.quantity_received
      FROM inventory.purchase_orders po
      JOIN inventory.purchase_order_lines l USING (purchase_order_id)
      JOIN inventory.products p USING (product_id)
      JOIN inventory.warehouses w ON w.warehouse_id = po.warehouse_id
     WHERE po.supplier_id = inventory.supplier_of_session() AND po.status <> 'draft'
     ORDER BY po.created_at DESC, po.po_number, l.line_no
$$;

CREATE FUNCTION api.confirm_purchase_order(p_po_number text, p_expected_date date DEFAULT NULL)
RETURNS date
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog
AS $$
DECLARE
    v_supplier integer := inventory.supplier_of_session();
    v_po inventory.purchase_orders;
    v_expected date;
BEGIN
    SELECT * INTO v_po FROM inventory.purchase_orders
     WHERE po_number = p_po_number AND supplier_id = v_supplier AND status <> 'draft' FOR UPDATE;
    IF NOT FOUND THEN
        -- Another supplier's order is as unknown as a missing one.
        PERFORM inventory.fail('SO001', format('unknown purchase order %s', coalesce(quote_literal(p_po_number), 'NULL')));
    END IF;
    IF v_po.status <> 'sent' THEN
        PERFORM inventory.fail('SO004', format('purchase order %s is %s; only sent orders can be confirmed', p_po_number, v_po.status));
    END IF;
    IF p_expected_date IS NOT NULL AND p_expected_date < current_date THEN
        PERFORM inventory.fail('SO005', format('p_expected_date %s is in the past', p_expected_date));
    END IF;
    UPDATE inventory.purchase_orders
       SET confirmed_at = now(), expected_date = coalesce(p_expected_date, expected_date)
     WHERE purchase_order_id = v_po.purchase_order_id
    RETURNING expected_date INTO v_expected;
    PERFORM audit.record('api.confirm_purchase_order',
        jsonb_build_object('p_po_number', p_po_number, 'p_expected_date', p_expected_date),
        jsonb_build_object('expected_date', v_expected));
    RETURN v_expected;
END
$$;

-- Reports (read-only) ------------------------------------------------------

CREATE FUNCTION inventory.require_period(p_from date, p_to date) RETURNS void
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog
AS $$
BEGIN
    IF p_from IS NULL OR p_to IS NULL OR p_from >= p_to THEN
        PERFORM inventory.fail('SO005', format('the period [%s, %s) is empty or open; give p_from < p_to', p_from, p_to));
    END IF;
END
$$;

CREATE FUNCTION api.reorder_needs(p_window_days integer DEFAULT 28)
RETURNS TABLE (sku text, warehouse text, available integer, on_order integer, reorder_point integer,
               daily_velocity numeric, lead_time_days integer, suggested_quantity integer, supplier text)
    LANGUAGE plpgsql STABLE
    SECURITY DEFINER
    SET search_path = pg_catalog
AS $$
BEGIN
    PERFORM inventory.require_positive('p_window_days', p_window_days);
    RETURN QUERY
    WITH velocity AS (
        SELECT l.product_id, o.warehouse_id, sum(l.quantity)::numeric / p_window_days AS per_day
          FROM inventory.sales_orders o
          JOIN inventory.sales_order_lines l USING (sales_order_id)
         WHERE o.ordered_at >= now() - make_interval(days => p_window_days) AND o.status = 'fulfilled'
         GROUP BY l.product_id, o.warehouse_id
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
           -- cover the lead time at the recent pace, plus the reorder point as safety stock
           greatest(st.reorder_quantity,
                    ceil(st.per_day * st.lead)::integer + st.reorder_point - st.available - st.on_order),
           st.supplier
      FROM state st
     WHERE st.available + st.on_order <= st.reorder_point
     ORDER BY st.per_day DESC, st.sku, st.warehouse;
END
$$;

CREATE FUNCTION api.supplier_performance(p_from date, p_to date)
RETURNS TABLE (supplier text, name text, purchase_orders bigint, received bigint, on_time_rate numeric,
               avg_lead_days numeric, fill_rate numeric)
    LANGUAGE plpgsql STABLE
    SECURITY DEFINER
    SET search_path = pg_catalog
AS $$
BEGIN
    PERFORM inventory.require_period(p_from, p_to);
    RETURN QUERY
    WITH po AS (
        SELECT po.*, (SELECT sum(quantity_ordered) FROM inventory.purchase_order_lines l WHERE l.purchase_order_id = po.purchase_order_id) AS ordered,
                     (SELECT sum(quantity_received) FROM inventory.purchase_order_lines l WHERE l.purchase_order_id = po.purchase_order_id) AS got
          FROM inventory.purchase_orders po
         WHERE po.sent_at >= p_from AND po.sent_at < p_to AND po.status <> 'cancelled'
    )
    SELECT s.code, s.name, count(po.*),
           count(*) FILTER (WHERE po.status = 'received'),
           round(avg((po.received_at::date <= po.expected_date)::integer) FILTER (WHERE po.status = 'received'), 3),
           round(avg(extract(epoch FROM po.received_at - po.sent_at) / 86400) FILTER (WHERE po.status = 'received'), 1),
           round(sum(po.got) FILTER (WHERE po.expected_date < current_date)::numeric
                 / nullif(sum(po.ordered) FILTER (WHERE po.expected_date < current_date), 0), 3)
      FROM po JOIN inventory.suppliers s USING (supplier_id)
     GROUP BY s.code, s.name
     ORDER BY s.code;
END
$$;

CREATE FUNCTION api.sales_summary(p_from date, p_to date, p_by text DEFAULT 'month')
RETURNS TABLE (bucket text, orders bigint, units bigint, revenue numeric)
    LANGUAGE plpgsql STABLE
    SECURITY DEFINER
    SET search_path = pg_catalog
AS $$
BEGIN
    PERFORM inventory.require_period(p_from, p_to);
    IF p_by IS NULL OR p_by NOT IN ('day', 'week', 'month', 'category', 'region', 'reseller', 'warehouse') THEN
        PERFORM inventory.fail('SO005', format('p_by must be day, week, month, category, region, reseller or warehouse; got %s', coalesce(p_by, 'NULL')));
    END IF;
    RETURN QUERY
    SELECT CASE p_by
             WHEN 'day' THEN to_char(o.ordered_at, 'YYYY-MM-DD')
             WHEN 'week' THEN to_char(o.ordered_at, 'IYYY-"W"IW')
             WHEN 'month' THEN to_char(o.ordered_at, 'YYYY-MM')
             WHEN 'category' THEN p.category
             WHEN 'region' THEN g.code
             WHEN 'reseller' THEN r.code
             ELSE w.code
           END AS b,
           count(DISTINCT o.sales_order_id), sum(l.quantity)::bigint, sum(l.quantity * l.unit_price)
      FROM inventory.sales_orders o
      JOIN inventory.sales_order_lines l USING (sales_order_id)
      JOIN inventory.products p USING (product_id)
      JOIN inventory.resellers r ON r.reseller_id = o.reseller_id
      JOIN inventory.regions g ON g.region_id = r.region_id
      JOIN inventory.warehouses w ON w.warehouse_id = o.warehouse_id
     WHERE o.ordered_at >= p_from AND o.ordered_at < p_to AND o.status = 'fulfilled'
     GROUP BY 1
     ORDER BY 1;
END
$$;

CREATE FUNCTION api.margins(p_from date, p_to date, p_by text DEFAULT 'category')
RETURNS TABLE (bucket text, units bigint, revenue numeric, cost numeric, margin numeric, margin_pct numeric)
    LANGUAGE plpgsql STABLE
    SECURITY DEFINER
    SET search_path = pg_catalog
AS $$
BEGIN
    PERFORM inventory.require_period(p_from, p_to);
    IF p_by IS NULL OR p_by NOT IN ('category', 'sku', 'month', 'reseller') THEN
        PERFORM inventory.fail('SO005', format('p_by must be category, sku, month or reseller; got %s', coalesce(p_by, 'NULL')));
    END IF;
    RETURN QUERY
    WITH lines AS (
        SELECT CASE p_by
                 WHEN 'category' THEN p.category
                 WHEN 'sku' THEN p.sku
                 WHEN 'month' THEN to_char(o.ordered_at, 'YYYY-MM')
                 ELSE r.code
               END AS b,
               l.quantity, l.quantity * l.unit_price AS revenue, l.quantity * p.unit_cost AS cost
          FROM inventory.sales_orders o
          JOIN inventory.sales_order_lines l USING (sales_order_id)
          JOIN inventory.products p USING (product_id)
          JOIN inventory.resellers r ON r.reseller_id = o.reseller_id
         WHERE o.ordered_at >= p_from AND o.ordered_at < p_to AND o.status = 'fulfilled'
    )
    SELECT b, sum(quantity)::bigint, sum(lines.revenue), sum(lines.cost), sum(lines.revenue) - sum(lines.cost),
           round(100 * (sum(lines.revenue) - sum(lines.cost)) / nullif(sum(lines.revenue), 0), 2)
      FROM lines
     GROUP BY b
     ORDER BY b;
END
$$;

-- Audit reading (dept_audit) -----------------------------------------------

CREATE FUNCTION api.audit_events(p_from timestamptz DEFAULT NULL, p_to timestamptz DEFAULT NULL,
                                 p_after_event bigint DEFAULT 0, p_limit integer DEFAULT 1000)
RETURNS TABLE (event_id bigint, occurred_at timestamptz, login text, acting_role text, function_name text,
               arguments jsonb, result jsonb, client_addr text, application_name text, txid text,
               sealed boolean)
    LANGUAGE sql STABLE
    SECURITY DEFINER
    SET search_path = pg_catalog
AS $$
    SELECT e.event_id, e.occurred_at, e.login::text, e.acting_role, e.function_name, e.arguments, e.result,
           host(e.client_addr), e.application_name, e.txid::text, e.event_id <= s.sealed_through
      FROM audit.events e CROSS JOIN audit.seal_state s
     WHERE e.event_id > coalesce(p_after_event, 0)
       AND (p_from IS NULL OR e.occurred_at >= p_from)
       AND (p_to IS NULL OR e.occurred_at < p_to)
     ORDER BY e.event_id
     LIMIT greatest(coalesce(p_limit, 1000), 0)
$$;

CREATE FUNCTION api.audit_tail(p_count integer DEFAULT 20)
RETURNS TABLE (event_id bigint, occurred_at timestamptz, login text, acting_role text, function_name text,
               arguments jsonb, result jsonb, client_addr text, application_name text, txid text,
               sealed boolean)
    LANGUAGE sql STABLE
    SECURITY DEFINER
    SET search_path = pg_catalog
AS $$
    SELECT * FROM (
        SELECT e.event_id, e.occurred_at, e.login::text, e.acting_role, e.function_name, e.arguments, e.result,
               host(e.client_addr), e.application_name, e.txid::text, e.event_id <= s.sealed_through
          FROM audit.events e CROSS JOIN audit.seal_state s
         ORDER BY e.event_id DESC
         LIMIT greatest(coalesce(p_count, 20), 0)
    ) t ORDER BY t.event_id
$$;

-- The chain in position order with what verification needs: per event, the
-- hash sealed into the chain, the event as stored now (NULL when it is gone)
-- and its canonical bytes; at the last event of each seal, the head it
-- recorded.
CREATE FUNCTION api.audit_chain(p_after_position bigint DEFAULT 0, p_limit integer DEFAULT 10000)
RETURNS TABLE (chain_position bigint, event_id bigint, sealed_hash bytea, seal_head bytea, canonical text)
    LANGUAGE sql STABLE
    SECURITY DEFINER
    SET search_path = pg_catalog
AS $$
    SELECT s.first_position + x.i - 1, x.id, x.hash,
           CASE WHEN x.i = cardinality(s.event_ids) THEN s.head END,
           CASE WHEN e.event_id IS NOT NULL THEN audit.canonical(e) END
      FROM audit.seals s
     CROSS JOIN LATERAL unnest(s.event_ids, s.event_hashes) WITH ORDINALITY AS x(id, hash, i)
      LEFT JOIN audit.events e ON e.event_id = x.id
     WHERE s.first_position + cardinality(s.event_ids) - 1 > coalesce(p_after_position, 0)
       AND s.first_position + x.i - 1 > coalesce(p_after_position, 0)
     ORDER BY s.first_position, x.i
     LIMIT greatest(coalesce(p_limit, 10000), 0)
$$;

-- Events not in the chain: recent ones (above the sealed point), and any
-- below it the sealer skipped (skipped = true: something is wrong).
CREATE FUNCTION api.audit_unsealed()
RETURNS TABLE (event_id bigint, skipped boolean)
    LANGUAGE sql STABLE
    SECURITY DEFINER
    SET search_path = pg_catalog
AS $$
    SELECT e.event_id, false
      FROM audit.events e CROSS JOIN audit.seal_state s
     WHERE e.event_id > s.sealed_through
    UNION ALL
    SELECT e.event_id, true
      FROM audit.events e CROSS JOIN audit.seal_state s
     WHERE e.event_id <= s.sealed_through
       AND NOT EXISTS (SELECT 1 FROM (SELECT unnest(x.event_ids) AS id FROM audit.seals x) u WHERE u.id = e.event_id)
     ORDER BY 1
$$;

CREATE FUNCTION api.audit_seal()
RETURNS integer
    LANGUAGE sql
    SECURITY DEFINER
    SET search_path = pg_catalog
AS $$
    SELECT audit.seal()
$$;
