-- A refused queued checkout records why it was refused (the checkout's refusal, as JSON),
-- not an HTTP answer: the API turns the refusal into the same answer a synchronous checkout
-- gives, in one place, when the client polls.
ALTER TABLE checkout_requests RENAME COLUMN error TO refusal;
ALTER TABLE checkout_requests DROP COLUMN http_status;
