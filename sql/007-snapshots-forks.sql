-- Snapshots and forks (issue 16).
--
-- A snapshot names a revision of a workspace and keeps it readable: retention never moves the
-- workspace's pruned_through past the lowest snapshot's revision (the tree at a revision is the
-- current files with every later change undone, so only the changes after it must stay).
CREATE TABLE snapshots (
  workspace_id uuid NOT NULL REFERENCES workspaces ON DELETE CASCADE,
  name         text COLLATE "C" NOT NULL,
  revision     bigint NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  created_by   uuid,
  PRIMARY KEY (workspace_id, name)
);
-- retention asks for a workspace's lowest snapshot revision
CREATE INDEX snapshots_revision ON snapshots (workspace_id, revision);

-- A fork records where it came from. No foreign key: the source may be deleted later, and the
-- fork still says what it was forked from.
ALTER TABLE workspaces ADD COLUMN forked_from_workspace_id uuid;
ALTER TABLE workspaces ADD COLUMN forked_from_revision bigint;
ALTER TABLE workspaces ADD CONSTRAINT workspaces_forked_from
  CHECK ((forked_from_workspace_id IS NULL) = (forked_from_revision IS NULL));
