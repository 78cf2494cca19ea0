-- The credit gate stores what a request came to, not an HTTP answer: the first outcome of an
-- idempotency key (charged, held, or refused with what was missing), and the resolution of a
-- reservation, as JSON. The API turns them into answers. Rows stored before keep their HTTP
-- answer in status_code/response (or answer_status/answer), which is read back as an
-- outcome. The PostgreSQL twin lives in ../postgres.
ALTER TABLE idempotency_keys ADD COLUMN outcome TEXT;
ALTER TABLE reservations ADD COLUMN outcome TEXT;
