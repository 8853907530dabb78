-- Content search (issue 13): a trigram index over the text of each distinct content, so a query
-- with a usable literal opens only the files that can match. The index is on the blobs
-- themselves (one row per distinct content), through an expression: no copy of the text is kept.
-- pg_trgm is a trusted extension (PostgreSQL 13+); PGlite loads it from its constructor options.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- A blob's text as search sees it: NULL for what search skips as binary (a NUL byte, or not valid
-- UTF-8) and for contents over 1 MiB (searched without the index's help, see src/search).
-- IMMUTABLE: the result depends on the bytes only (the database encoding is UTF-8).
CREATE FUNCTION search_text(content bytea) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
  IF octet_length(content) > 1048576 OR position('\x00'::bytea IN content) > 0 THEN
    RETURN NULL;
  END IF;
  RETURN convert_from(content, 'UTF8');
EXCEPTION WHEN character_not_in_repertoire OR untranslatable_character OR invalid_parameter_value THEN
  RETURN NULL;
END
$$;

CREATE INDEX blobs_search_trgm ON blobs USING gin (search_text(content) gin_trgm_ops);
