-- Every movement of a workspace's credits ends by writing its account row, and now counts
-- that write in `version`. The gate on PostgreSQL reads a batch's books without locking them
-- and writes the batch in one statement that first locks each account row and checks that
-- its version is still the one read (`tally_expect` below raises otherwise, and the whole
-- statement is undone): a movement in between, even one that writes no journal entry (a hold,
-- a pool), makes the batch start again under the row locks.
ALTER TABLE credit_accounts ADD COLUMN version BIGINT NOT NULL DEFAULT 0;

-- Fails the statement it is called in when a write touched another number of rows than
-- planned. The error is a serialization failure (SQLSTATE 40001): the books moved meanwhile,
-- and the work may be tried again.
CREATE FUNCTION tally_expect(touched BIGINT, wanted BIGINT, what TEXT) RETURNS BIGINT
LANGUAGE plpgsql AS $$
BEGIN
    IF touched <> wanted THEN
        RAISE EXCEPTION USING ERRCODE = 'serialization_failure', MESSAGE = what;
    END IF;
    RETURN touched;
END;
$$;
