-- Retention finds unreferenced blobs with two hash anti-joins per pass (src/mutations/retention.ts)
-- instead of a lookup per blob in an index per reference. Those three indexes, on random SHA-256
-- keys, and the files → blobs foreign key cost every write: an insert in each index touched
-- a page of its own (WAL per write 14–17 kB on a large database against 9–10 without them) and
-- the key check locked the blob's row. A writer that reuses an existing blob holds it instead
-- (FOR KEY SHARE, as before) and clears the sweep's mark on it, if any; see retention.ts.
ALTER TABLE files DROP CONSTRAINT files_blob_sha256_fkey;
DROP INDEX files_blob;
DROP INDEX change_entries_sha_before;
DROP INDEX change_entries_sha_after;
-- the retention pass that found the blob unreferenced; NULL when none did (or a writer reused it since)
ALTER TABLE blobs ADD COLUMN sweep uuid;
