import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

/**
 * Applies the numbered plain-SQL files of sql/ in order, once each, recording them in
 * `schema_migrations`. Hand-written rather than Kysely's Migrator because each file is run as one
 * multi-statement script, which Kysely's query path (the extended protocol) cannot do.
 *
 * An advisory lock serialises instances that start together on one database.
 */
export interface MigrationTarget {
  exec: (script: string) => Promise<void>
  query: <R>(text: string, params?: unknown[]) => Promise<R[]>
}

// `npm run build` copies sql/ to dist/sql/, so this resolves from source and from the build alike.
export const SQL_DIR = fileURLToPath(new URL('../../sql/', import.meta.url))

export async function migrationFiles (): Promise<string[]> {
  return (await readdir(SQL_DIR)).filter(f => /^\d+-[\w-]+\.sql$/.test(f)).sort()
}

export async function migrate (target: MigrationTarget): Promise<string[]> {
  const applied: string[] = []
  await target.exec('SELECT pg_advisory_lock(727274)')
  try {
    await target.exec('CREATE TABLE IF NOT EXISTS schema_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())')
    const done = new Set((await target.query<{ name: string }>('SELECT name FROM schema_migrations')).map(r => r.name))
    for (const file of await migrationFiles()) {
      if (done.has(file)) continue
      const script = await readFile(join(SQL_DIR, file), 'utf8')
      await target.exec('BEGIN')
      try {
        await target.exec(script)
        await target.query('INSERT INTO schema_migrations (name) VALUES ($1)', [file])
        await target.exec('COMMIT')
      } catch (err) {
        await target.exec('ROLLBACK')
        throw err
      }
      applied.push(file)
    }
  } finally {
    await target.exec('SELECT pg_advisory_unlock(727274)')
  }
  return applied
}
