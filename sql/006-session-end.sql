-- Logout ends a session (issue "Hardening", findings 14 and 15).
--
-- sessions.ended_at: set by logout. Every instance reads the sessions ended recently (a partial
-- index keeps that cheap) and refuses their access tokens from then on, and closes their sockets.
ALTER TABLE sessions ADD COLUMN ended_at timestamptz;
CREATE INDEX sessions_ended ON sessions (ended_at) WHERE ended_at IS NOT NULL;

-- refresh_tokens.successor: the pair a refresh issued for this token, encrypted with a key
-- derived from this token (which only its holder knows), so that a second refresh with the same
-- token within REFRESH_REUSE_WINDOW_MS (two tabs at once) gets the same pair back instead of
-- revoking the family.
ALTER TABLE refresh_tokens ADD COLUMN successor bytea;
