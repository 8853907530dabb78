-- Retention deletes blobs that nothing references any more: these make "is it referenced" cheap.
CREATE INDEX files_blob ON files (blob_sha256);
CREATE INDEX change_entries_sha_before ON change_entries (sha_before);
CREATE INDEX change_entries_sha_after ON change_entries (sha_after);
