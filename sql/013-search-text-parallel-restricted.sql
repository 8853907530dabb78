-- search_text (005-search.sql) catches invalid UTF-8 in an EXCEPTION block, which is a
-- subtransaction, and a parallel worker cannot start one: a search whose prefilter PostgreSQL
-- planned as a parallel scan of the blobs (a large database, a short literal) failed with "cannot
-- start subtransactions during a parallel operation". Restricted, it runs in the leader only.
-- (The index on it only needs it IMMUTABLE, which it stays.)
ALTER FUNCTION search_text(bytea) PARALLEL RESTRICTED;
