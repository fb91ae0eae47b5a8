-- Checkout contention: a foreign key check takes a KEY SHARE lock on the referenced row.
-- When 50 buyers race for one show and one tier, every pending checkout transaction held such
-- a lock on the same `shows`, `tickets` and `promo_codes` rows, and PostgreSQL records
-- concurrent lockers of a row as a MultiXact; the UPDATE of `tickets.held` and even plain reads
-- of those rows then queued on the MultiXact SLRU locks, capping a hot tier at ~200 checkouts/s
-- (seen in pg_stat_activity as LWLock:MultiXactMember* waits). Checked at commit instead, the
-- tier row is already this transaction's own updated version (no extra locker) and the show and
-- promo rows are locked only for the instant of the commit. Integrity is unchanged: a missing
-- row still fails the transaction, at COMMIT.
ALTER TABLE orders ALTER CONSTRAINT orders_show_id_fkey DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE orders ALTER CONSTRAINT orders_promo_code_id_fkey DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE order_lines ALTER CONSTRAINT order_lines_ticket_id_fkey DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE attendees ALTER CONSTRAINT attendees_show_id_fkey DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE attendees ALTER CONSTRAINT attendees_ticket_id_fkey DEFERRABLE INITIALLY DEFERRED;
