-- Jobs: leases on email sends.
--
-- `claimed_at` is when a worker moved the message to `sending`. A claim older than the lease
-- (a worker that died mid-send) may be taken over by another worker; a live claim may not,
-- which is what makes two concurrent deliveries of the same email job send one email.
ALTER TABLE email_messages ADD COLUMN claimed_at TIMESTAMPTZ;

-- The reconciler scans recently paid orders.
CREATE INDEX orders_paid_at ON orders (paid_at) WHERE status = 'paid';
