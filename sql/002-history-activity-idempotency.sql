-- History: every entry a change touched, with its state before and after, so any file can be
-- read as it was and any change reverted. A directory move of 1,000 files is one change with
-- 1,001 entries. Blob references are kept as columns so retention can tell which blobs are in use.
CREATE TABLE change_entries (
  workspace_id uuid NOT NULL,
  revision     bigint NOT NULL,
  seq          integer NOT NULL,
  path_before  text COLLATE "C",
  path_after   text COLLATE "C",
  before       jsonb,
  after        jsonb,
  sha_before   text,
  sha_after    text,
  PRIMARY KEY (workspace_id, revision, seq),
  FOREIGN KEY (workspace_id, revision) REFERENCES changes ON DELETE CASCADE
);
CREATE INDEX change_entries_after ON change_entries (workspace_id, path_after, revision);
CREATE INDEX change_entries_before ON change_entries (workspace_id, path_before, revision);
CREATE INDEX changes_session ON changes (workspace_id, session_id, revision);
CREATE INDEX changes_at ON changes (at);

-- The activity log: one entry per mutation (success or failure), login, and socket connect or
-- disconnect, grouped by session.
CREATE TABLE activity (
  id           bigserial PRIMARY KEY,
  session_id   uuid NOT NULL,
  user_id      uuid NOT NULL,
  workspace_id uuid,
  at           timestamptz NOT NULL DEFAULT now(),
  type         text NOT NULL,
  op           text,
  path         text,
  new_path     text,
  status       integer NOT NULL,
  code         text,
  revision     bigint,
  duration_ms  integer NOT NULL DEFAULT 0,
  details      jsonb
);
CREATE INDEX activity_session ON activity (session_id, id);
CREATE INDEX activity_user_session ON activity (user_id, session_id);

-- Idempotency keys: the first response to a mutating request, replayed to retries for 24 h.
CREATE TABLE idempotency_keys (
  user_id      uuid NOT NULL,
  key          text NOT NULL,
  request_hash text NOT NULL,
  status_code  integer NOT NULL,
  body         jsonb NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
