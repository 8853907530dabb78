-- Session ownership (issue "Hardening", finding 4): a session id belongs to the user who first
-- used it, so nobody else can add entries to its activity log or its CHAT_LOG_DIR file. The row
-- is claimed atomically on first use (INSERT … ON CONFLICT DO NOTHING, then read back) and kept:
-- the log file outlives the activity retention, so ownership must too. No foreign key to users
-- on purpose: a deleted user's session ids stay taken.
CREATE TABLE sessions (
  id         uuid PRIMARY KEY,
  user_id    uuid NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
-- MAX_NEW_SESSIONS_PER_WINDOW counts a user's sessions created in the window.
CREATE INDEX sessions_user_created ON sessions (user_id, created_at);

-- Sessions already in use keep their first user: the earliest activity entry or refresh token.
INSERT INTO sessions (id, user_id, created_at)
SELECT DISTINCT ON (id) id, user_id, at FROM (
  SELECT session_id AS id, user_id, at FROM activity
  UNION ALL
  SELECT session_id, user_id, created_at FROM refresh_tokens
) used
ORDER BY id, at;

-- ACTIVITY_RETENTION deletes entries by age, in batches.
CREATE INDEX activity_at ON activity (at);
