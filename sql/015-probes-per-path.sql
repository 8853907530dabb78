-- The entries at `wanted`, found one primary-key probe per path (issue 11). A plan kept and
-- reused (a PL/pgSQL function's, a prepared statement's) is made for "workspace_id = $1" with the
-- average workspace's size: in a database of many small workspaces, a few rows. For
-- `path = ANY (wanted)` PostgreSQL then read all of the workspace's files and filtered them,
-- which in a workspace of 100,000 files cost 50 ms on every group's lock. A LATERAL subquery with
-- a LIMIT is not flattened into a join, so each path is one probe whatever the estimate.
CREATE OR REPLACE FUNCTION entries_after_lock(ws uuid, wanted text[]) RETURNS SETOF files
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  RETURN QUERY SELECT f.* FROM unnest(wanted) AS w(path)
    CROSS JOIN LATERAL (SELECT * FROM files WHERE workspace_id = ws AND path = w.path LIMIT 1) f;
END
$$;
