-- The initial schema. Every workspace-scoped table is keyed by workspace_id first (the natural
-- distribution column); paths use the "C" collation so ordering is bytewise and prefix LIKE
-- can use the primary-key index.

CREATE TABLE users (
  id            uuid PRIMARY KEY,
  email         text NOT NULL UNIQUE,
  password_hash text,
  permissions   text[] NOT NULL DEFAULT '{file.read,file.write}',
  created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE refresh_tokens (
  id          uuid PRIMARY KEY,
  user_id     uuid NOT NULL REFERENCES users ON DELETE CASCADE,
  family_id   uuid NOT NULL,
  session_id  uuid NOT NULL,
  token_hash  text NOT NULL UNIQUE,
  used_at     timestamptz,
  revoked_at  timestamptz,
  expires_at  timestamptz NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

CREATE TABLE workspaces (
  id            uuid PRIMARY KEY,
  name          text NOT NULL,
  owner_id      uuid NOT NULL REFERENCES users ON DELETE CASCADE,
  -- bumped by every change, inside the writing transaction: gap-free and in commit order
  revision      bigint NOT NULL DEFAULT 0,
  -- changes up to and including this revision are no longer retained
  pruned_through bigint NOT NULL DEFAULT 0,
  created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE workspace_members (
  workspace_id uuid NOT NULL REFERENCES workspaces ON DELETE CASCADE,
  user_id      uuid NOT NULL REFERENCES users ON DELETE CASCADE,
  role         text NOT NULL CHECK (role IN ('owner', 'editor', 'viewer')),
  created_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (workspace_id, user_id)
);
CREATE INDEX workspace_members_user ON workspace_members (user_id);

-- content-addressed and immutable: one row per distinct content
CREATE TABLE blobs (
  sha256     text PRIMARY KEY,
  size       bigint NOT NULL,
  content    bytea NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE files (
  workspace_id uuid NOT NULL REFERENCES workspaces ON DELETE CASCADE,
  path         text COLLATE "C" NOT NULL,
  parent       text COLLATE "C" NOT NULL,
  depth        integer NOT NULL,
  kind         text NOT NULL CHECK (kind IN ('file', 'directory')),
  blob_sha256  text REFERENCES blobs,
  size         bigint,
  mime_type    text,
  metadata     jsonb NOT NULL DEFAULT '{}',
  version      integer NOT NULL DEFAULT 1,
  -- the revision of the last change to this entry's content, path or metadata
  etag         bigint NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  created_by   uuid,
  updated_at   timestamptz NOT NULL DEFAULT now(),
  updated_by   uuid,
  PRIMARY KEY (workspace_id, path),
  CHECK ((kind = 'file') = (blob_sha256 IS NOT NULL))
);
CREATE INDEX files_children ON files (workspace_id, parent, path);

CREATE TABLE changes (
  workspace_id uuid NOT NULL REFERENCES workspaces ON DELETE CASCADE,
  revision     bigint NOT NULL,
  op           text NOT NULL,
  kind         text NOT NULL,
  path         text COLLATE "C" NOT NULL,
  new_path     text COLLATE "C",
  etag         bigint,
  version      integer,
  sha256       text,
  size         bigint,
  user_id      uuid,
  session_id   uuid,
  op_id        text,
  at           timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (workspace_id, revision)
);
