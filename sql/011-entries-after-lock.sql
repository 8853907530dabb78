-- The entries at `wanted` as they are when called: a group commit takes its workspace's row lock
-- and reads the entries its members name in one statement (src/files/entry-memo.ts). A
-- statement's own reads see the snapshot it took when it started, before any wait for the lock,
-- so the transaction that held the lock (the previous group, which this one queued behind) would
-- be missing from them. A VOLATILE function's statements each take a fresh snapshot: called once
-- the lock is granted (joined to the locked row), this one sees what that transaction committed.
CREATE FUNCTION entries_after_lock(ws uuid, wanted text[]) RETURNS SETOF files
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  RETURN QUERY SELECT * FROM files WHERE workspace_id = ws AND path = ANY (wanted);
END
$$;
