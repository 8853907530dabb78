-- The trigram index (005-search.sql) takes a new content's trigrams into its pending list, and the
-- insert that finds the list past `gin_pending_list_limit` merges all of it into the index before
-- it returns. At the default 4 MB that insert, a write's blob statement, took 26–35 ms every few
-- seconds under load; every write queued on its workspace's lock waited for it (the p99 of a hot
-- workspace's writes: 31–38 ms against 19–22 with 512 kB, bench/README.md 2026-12-03). A smaller
-- list is merged more often and briefly, for about the same work, and a search scans less of it.
ALTER INDEX blobs_search_trgm SET (gin_pending_list_limit = 512);
