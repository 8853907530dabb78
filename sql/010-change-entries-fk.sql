-- A change's entries are written with their change, in its transaction (src/files/entries.ts,
-- src/snapshots/service.ts), and deleted with it by retention (src/mutations/retention.ts).
-- Their foreign key to `changes` made PostgreSQL look the change up and lock its row for every
-- entry inserted, with a plan kept for the connection's life: planned before `changes` had
-- statistics (a new database), that lookup went through `changes_session` (workspace, session,
-- revision) and read every change of the workspace, ≈ 1 ms per entry after 20,000 writes, until
-- an ANALYZE replanned it. The entries now go with their workspace directly (one cheap check of
-- a row the write has locked).
ALTER TABLE change_entries DROP CONSTRAINT change_entries_workspace_id_revision_fkey;
ALTER TABLE change_entries ADD FOREIGN KEY (workspace_id) REFERENCES workspaces ON DELETE CASCADE;
