import t from 'tap'
import { build, createTestDatabase, dbClient, registerUser, createWorkspace, sleep } from '../helpers/app.js'
import { expectStatus, type BatchResult } from '../helpers/http.js'
import { Ctx } from '../helpers/files.js'
import { range } from '../helpers/ws.js'

/**
 * A write reads and writes only the rows it names, however big its workspace is among small ones
 * (sql/015-probes-per-path.sql, src/files/entries.ts `recordChanges`). A plan PostgreSQL keeps
 * (a prepared statement's, a PL/pgSQL function's) is made for the average workspace: here, of
 * one file. Such plans are forced from the first run (`plan_cache_mode`), as PostgreSQL picks
 * them after five when they look no dearer, and the rows of `files` that groups of writes to
 * the big workspace read are counted.
 */

const BIG = 20_000
const SMALL = 4_000
const WRITERS = 20
const ROUNDS = 5

t.test('groups of writes to a big workspace read only the files they name', async t => {
  const url = await createTestDatabase(t)
  const admin = await dbClient(t, url)
  await admin.query(`ALTER DATABASE ${new URL(url).pathname.slice(1)} SET plan_cache_mode = force_generic_plan`)
  const app = await build(t, { DATABASE_URL: url })
  const user = await registerUser(app)
  const c = new Ctx(app, user, await createWorkspace(app, user))
  const paths = range(0, WRITERS - 1).map(i => `/w${i}.txt`)
  expectStatus<BatchResult>(await c.batch(paths.map(path => ({ type: 'create', path, content: 'v0' }))), 200, 'the files written')
  // The big workspace's other files, and many small workspaces of one file each: the average workspace holds one file.
  await admin.query(`INSERT INTO files (workspace_id, path, parent, depth, kind, blob_sha256, size, mime_type, etag)
    SELECT workspace_id, '/g' || i, '/', 1, kind, blob_sha256, size, mime_type, etag FROM files, generate_series(1, $2::int) i
     WHERE workspace_id = $1 AND path = '/w0.txt'`, [c.ws, BIG])
  await admin.query("INSERT INTO workspaces (id, name, owner_id) SELECT gen_random_uuid(), 'small', $1 FROM generate_series(1, $2::int)", [user.id, SMALL])
  await admin.query(`INSERT INTO files (workspace_id, path, parent, depth, kind, blob_sha256, size, mime_type, etag)
    SELECT w.id, '/one.txt', '/', 1, f.kind, f.blob_sha256, f.size, f.mime_type, f.etag FROM workspaces w, files f
     WHERE w.name = 'small' AND f.workspace_id = $1 AND f.path = '/w0.txt'`, [c.ws])
  await admin.query('ANALYZE')
  const read = async (): Promise<number> => Number((await admin.query<{ n: string }>(
    "SELECT coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) AS n FROM pg_stat_user_tables WHERE relname = 'files'")).rows[0]?.n)
  await admin.query('SELECT pg_stat_force_next_flush()')
  await sleep(100)
  const before = await read()

  for (const round of range(1, ROUNDS)) {
    const results = await Promise.all(paths.map(async path => await c.put(path, { content: `v${round}` })))
    t.same(results.map(r => r.statusCode), paths.map(() => 200), `round ${round}: every write answered 200`)
  }
  const files = await c.get('/w0.txt')
  t.equal(files.json<{ content: string }>().content, `v${ROUNDS}`, 'the last write is there')

  // A backend's counts reach the statistics when it ends: close the app's connections.
  await app.close()
  let fetched = 0
  for (let i = 0; i < 50; i++) {
    fetched = await read() - before
    if (fetched > 0) break
    await sleep(100)
  }
  t.ok(fetched > 0, `the writes' reads were counted (${fetched})`)
  t.ok(fetched < BIG, `${ROUNDS * WRITERS} writes read ${fetched} rows of files, not the big workspace's ${BIG} once`)
})
