import t from 'tap'
import { sql } from 'kysely'
import { rowsJson, recordsOf, type ColumnTypes } from '../../src/db/compiled.js'
import { build, createTestDatabase, dbClient } from '../helpers/app.js'

/**
 * Rows sent as one JSON parameter (src/db/compiled.ts `rowsJson`, `recordsOf`), on the real
 * PostgreSQL: every value comes back as it went, whatever it holds (quotes, backslashes, a JSON
 * column's text, the word NULL, nulls, a lone surrogate as U+FFFD, as text parameters send it),
 * and the statement's text is the same for any number of rows (which is what it is for: one
 * prepared statement, not one per row count).
 */

interface Row { id: number, s: string | null, n: number | null, b: boolean | null, j: string | null, at: Date | null, u: string | null }

const COLUMNS: ColumnTypes<Row> = [['id', 'integer'], ['s', 'text'], ['n', 'bigint'], ['b', 'boolean'], ['j', 'jsonb'], ['at', 'timestamptz'], ['u', 'uuid']]

const ROWS: Row[] = [
  { id: 1, s: 'plain', n: 1, b: true, j: '{"a":1}', at: new Date('2026-12-04T04:30:00.123Z'), u: '4519b175-cd0d-4171-b01f-3d4f63b348b2' },
  { id: 2, s: 'quote " backslash \\ comma , braces {} semicolon ;', n: 9_007_199_254_740_991, b: false, j: '{"text":"a \\"quoted\\" \\\\ word","list":[1,"x"]}', at: new Date(0), u: null },
  { id: 3, s: 'NULL', n: -5, b: null, j: '"NULL"', at: null, u: '00000000-0000-0000-0000-000000000000' },
  { id: 4, s: '', n: 0, b: true, j: '[]', at: new Date('1999-12-31T23:59:59.999Z'), u: null },
  { id: 5, s: null, n: null, b: null, j: null, at: null, u: null },
  { id: 6, s: 'ünïcødé ✓ 😀 \t tab \n newline \' apostrophe', n: 42, b: false, j: '{"ü":"😀"}', at: new Date('2026-02-28T12:00:00Z'), u: null },
  { id: 7, s: 'a lone \ud800 surrogate, and \\ud800 as text', n: 1, b: true, j: '{"k":"\\\\ud800"}', at: null, u: null }
]
/** What PostgreSQL holds for each row: a lone surrogate becomes U+FFFD. */
const STORED = ROWS.map(r => ({ ...r, s: r.s?.toWellFormed() ?? null }))

t.test('values of every kind come back as they went, any number of rows', async t => {
  const url = await createTestDatabase(t)
  const app = await build(t, { DATABASE_URL: url })
  const client = await dbClient(t, url)
  await client.query('CREATE TABLE unnested (id integer, s text, n bigint, b boolean, j jsonb, at timestamptz, u uuid)')
  const insert = (rows: Row[]): ReturnType<typeof sql> =>
    sql`insert into unnested (id, s, n, b, j, at, u) ${recordsOf(COLUMNS, rowsJson(COLUMNS, rows))}`
  const texts = new Set<string>()
  for (const rows of [ROWS.slice(0, 1), ROWS.slice(1, 3), ROWS.slice(3), []]) {
    const query = insert(rows)
    texts.add(query.compile(app.db).sql)
    await query.execute(app.db)
  }
  t.equal(texts.size, 1, 'one statement text for 1, 2, 3 and 0 rows')
  const { rows } = await client.query<{ id: number, s: string | null, n: string | null, b: boolean | null, j: string | null, at: Date | null, u: string | null }>(
    'SELECT id, s, n, b, j::text AS j, at, u FROM unnested ORDER BY id')
  t.same(rows.map(r => ({ ...r, n: r.n === null ? null : Number(r.n), j: r.j === null ? null : JSON.parse(r.j) as unknown })),
    STORED.map(r => ({ ...r, j: r.j === null ? null : JSON.parse(r.j) as unknown })))
})

t.test('a value the column cannot take fails the statement, which inserts nothing', async t => {
  const url = await createTestDatabase(t)
  const app = await build(t, { DATABASE_URL: url })
  const client = await dbClient(t, url)
  await client.query('CREATE TABLE unnested (id integer, s text, n bigint, b boolean, j jsonb, at timestamptz, u uuid)')
  const bad = [...ROWS.slice(0, 2), { ...ROWS[0], id: 7, u: 'not-a-uuid' } as Row]
  await t.rejects(sql`insert into unnested (id, s, n, b, j, at, u) ${recordsOf(COLUMNS, rowsJson(COLUMNS, bad))}`.execute(app.db), { code: '22P02' })
  t.same((await client.query('SELECT count(*)::int AS n FROM unnested')).rows, [{ n: 0 }])
})
