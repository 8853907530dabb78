-- Files gain an executable flag (issue 16, "Export"): settable on write, shown in the meta, kept
-- by copy, move, revert and the archives (mode 0755 rather than 0644). Directories keep false.
ALTER TABLE files ADD COLUMN executable boolean NOT NULL DEFAULT false;
