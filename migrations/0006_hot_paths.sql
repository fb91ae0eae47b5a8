-- The two hot paths: the show detail's availability read and the `reservation` checkout.

-- Show detail: a tier's active holds are its `held` counter minus the holds of pending orders
-- that have expired but are not swept yet. Those orders are found through this index (the
-- show's pending orders past their expiry: a range scan that is empty between sweeps),
-- instead of every order line of every tier, which grows with every sale.
CREATE INDEX orders_pending_show_expiry ON orders (show_id, expires_at) WHERE status = 'pending';

-- Releasing pending orders (already locked by the caller): their seats go back to their
-- tiers (in tier-id order, as every seat change is made, so two releases cannot deadlock),
-- their promo uses are returned, and they move to `p_status`. Returns their Stripe session
-- ids (NULL for orders without one). The only implementation: `orders::release_locked` and
-- `pique_reserve` both call it.
CREATE FUNCTION pique_release_orders(p_ids int8[], p_status text) RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT ol.ticket_id, sum(ol.quantity)::int4 AS seats
               FROM order_lines ol JOIN orders o ON o.id = ol.order_id
              WHERE o.id = ANY(p_ids) AND o.status = 'pending'
              GROUP BY ol.ticket_id ORDER BY ol.ticket_id
    LOOP
        UPDATE tickets SET held = held - r.seats WHERE id = r.ticket_id;
    END LOOP;
    UPDATE promo_codes p SET uses = GREATEST(p.uses - x.n, 0)
      FROM (SELECT promo_code_id, count(*)::int4 AS n FROM orders
             WHERE id = ANY(p_ids) AND status = 'pending' AND promo_code_id IS NOT NULL
             GROUP BY promo_code_id) x
     WHERE p.id = x.promo_code_id;
    RETURN QUERY
        UPDATE orders SET status = p_status, updated_at = now(),
               cancelled_at = CASE WHEN p_status = 'cancelled' THEN now() ELSE cancelled_at END
         WHERE id = ANY(p_ids) AND status = 'pending'
        RETURNING session_id;
END $$;

-- Releases the lapsed holds on tiers `p_tiers` (at most 200 orders; orders another
-- transaction is working on are skipped: it pays or releases them itself). Returns their
-- Stripe session ids.
CREATE FUNCTION pique_release_expired_for(p_tiers int8[]) RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
    v_ids int8[];
BEGIN
    SELECT array_agg(id) INTO v_ids FROM (
        SELECT o.id FROM orders o
         WHERE o.status = 'pending' AND o.expires_at <= now()
           AND EXISTS (SELECT 1 FROM order_lines ol WHERE ol.order_id = o.id AND ol.ticket_id = ANY(p_tiers))
         ORDER BY o.id LIMIT 200 FOR UPDATE OF o SKIP LOCKED) lapsed;
    IF v_ids IS NOT NULL THEN
        RETURN QUERY SELECT s FROM pique_release_orders(v_ids, 'expired') s;
    END IF;
END $$;

-- A paid-for hold (`reservation`, `queue`) in one statement, so one round trip: called
-- outside any explicit transaction, the statement is its own transaction and commits in the
-- same round trip. The tier row lock, taken last, is then held only for the rest of this
-- function and the commit, never while the client reads an answer and sends the next
-- statement (with one round trip per statement, the hot tier's lock holder sat idle in
-- transaction most of the time and that idle time capped the tier's checkouts per second).
--
-- Steps, as `crates/store/src/checkout.rs` describes them: lapsed holds of the tiers are
-- released, the pending order and its lines are inserted, the promo use is counted, then
-- the seats are taken with one conditional UPDATE per tier in tier-id order. Refusals raise,
-- which rolls everything back: SQLSTATE PQ001 (a tier lacks seats; DETAIL is its id) and
-- PQ002 (the promo code is used up).
--
-- A hold is not money (it lapses on its own), so the commit does not wait for the WAL flush;
-- see `checkout::reserve` for why that is safe. An order with `p_uuid` that already exists
-- (a redelivered queue job) is returned as is, with `existing`.
CREATE FUNCTION pique_reserve(
    p_uuid uuid, p_show_id int8, p_email text, p_name text, p_promo_id int8,
    p_subtotal numeric, p_discount numeric, p_total numeric, p_strategy text, p_hold_secs float8,
    p_line_uuids uuid[], p_line_tickets int8[], p_line_quantities int4[], p_line_prices numeric[],
    p_line_donations numeric[], p_line_discounts numeric[], p_line_totals numeric[],
    p_seat_tickets int8[], p_seat_counts int4[],
    OUT order_id int8, OUT existing bool, OUT expires_at timestamptz, OUT created_at timestamptz,
    OUT currency text, OUT released_sessions text[])
LANGUAGE plpgsql AS $$
BEGIN
    SELECT o.id, true, o.expires_at, o.created_at, o.currency
      INTO order_id, existing, expires_at, created_at, currency
      FROM orders o WHERE o.uuid = p_uuid;
    IF FOUND THEN
        released_sessions := '{}';
        RETURN;
    END IF;
    PERFORM set_config('synchronous_commit', 'off', true);
    released_sessions := ARRAY(SELECT s FROM pique_release_expired_for(p_seat_tickets) s WHERE s IS NOT NULL);
    INSERT INTO orders (uuid, show_id, order_email, order_name, status, promo_code_id, subtotal, discount,
                        total, checkout_strategy, expires_at)
    VALUES (p_uuid, p_show_id, p_email, p_name, 'pending', p_promo_id, p_subtotal, p_discount, p_total,
            p_strategy, now() + make_interval(secs => p_hold_secs))
    RETURNING orders.id, false, orders.expires_at, orders.created_at, orders.currency
         INTO order_id, existing, expires_at, created_at, currency;
    INSERT INTO order_lines (uuid, order_id, ticket_id, quantity, price_per_ticket, donation_amount, discount, line_total)
    SELECT u, pique_reserve.order_id, t, q, p, d, disc, lt
      FROM unnest(p_line_uuids, p_line_tickets, p_line_quantities, p_line_prices, p_line_donations,
                  p_line_discounts, p_line_totals) AS x(u, t, q, p, d, disc, lt);
    IF p_promo_id IS NOT NULL THEN
        UPDATE promo_codes SET uses = uses + 1
         WHERE id = p_promo_id AND (max_uses IS NULL OR uses < max_uses);
        IF NOT FOUND THEN
            RAISE EXCEPTION 'promo code % is used up', p_promo_id USING ERRCODE = 'PQ002';
        END IF;
    END IF;
    FOR i IN 1 .. coalesce(array_length(p_seat_tickets, 1), 0) LOOP
        UPDATE tickets SET held = held + p_seat_counts[i]
         WHERE id = p_seat_tickets[i] AND show_id = p_show_id AND quantity - sold - held >= p_seat_counts[i];
        IF NOT FOUND THEN
            RAISE EXCEPTION 'not enough seats in tier %', p_seat_tickets[i]
                USING ERRCODE = 'PQ001', DETAIL = p_seat_tickets[i]::text;
        END IF;
    END LOOP;
END $$;
