/** The database round trip GET /ready makes (routes/health). */
import { sql } from 'kysely'
import type { Db } from '../db/schema.js'

/** A cheap round trip: throws when the database does not answer. */
export async function pingDatabase (db: Db): Promise<void> {
  await sql`SELECT 1`.execute(db)
}
