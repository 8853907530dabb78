import { createHash } from 'node:crypto'
import t, { type Test } from 'tap'
import type pg from 'pg'
import type { FastifyInstance } from 'fastify'
import { storeBlobs, type BlobContent } from '../../src/db/queries.js'
import { pruneBlobs } from '../../src/mutations/retention.js'
import { build, createTestDatabase, createWorkspace, dbClient, registerUser } from '../helpers/app.js'
import { Ctx } from '../helpers/files.js'

/**
 * Retention's blob sweep against writers that reuse the blob it is about to delete
 * (src/mutations/retention.ts `pruneBlobs`): whichever step of the pass a writer comes in at, the
 * blob it refers to stays, and a blob nobody refers to goes. The writers are real requests and
 * real transactions; the pass runs its steps on the real database, paused between them.
 */

interface Setup { app: FastifyInstance, pg: pg.Client, ctx: Ctx, orphan: BlobContent }

/** An app, a workspace, and a blob nothing refers to, older than the sweep's 10 minutes (as a failed group member leaves one). */
async function setup (t: Test): Promise<Setup> {
  const url = await createTestDatabase(t)
  const app = await build(t, { DATABASE_URL: url, RETENTION_INTERVAL_MS: '0' })
  const pg = await dbClient(t, url)
  const user = await registerUser(app)
  const ctx = new Ctx(app, user, await createWorkspace(app, user))
  const bytes = Buffer.from(`orphan ${Math.random()}`)
  const orphan = { sha256: createHash('sha256').update(bytes).digest('hex'), size: bytes.length, bytes }
  await pg.query("INSERT INTO blobs (sha256, size, content, created_at) VALUES ($1, $2, $3, now() - interval '1 hour')", [orphan.sha256, orphan.size, bytes])
  return { app, pg, ctx, orphan }
}

const stored = async (s: Setup): Promise<boolean> => ((await s.pg.query('SELECT 1 FROM blobs WHERE sha256 = $1', [s.orphan.sha256])).rowCount ?? 0) === 1
const mark = async (s: Setup): Promise<string | null> => (await s.pg.query<{ sweep: string | null }>('SELECT sweep FROM blobs WHERE sha256 = $1', [s.orphan.sha256])).rows[0]?.sweep ?? null

/** The writer: a file written with the orphan's content, read back whole. */
async function reuse (t: Test, s: Setup): Promise<void> {
  t.equal((await s.ctx.put('/reused.txt', { content: s.orphan.bytes.toString() })).statusCode, 201, 'the write that reuses the blob')
}

async function readBack (t: Test, s: Setup): Promise<void> {
  const read = await s.ctx.get('/reused.txt')
  t.equal(read.statusCode, 200)
  t.equal(JSON.parse(read.body).content, s.orphan.bytes.toString(), 'the file reads its content')
}

t.test('a blob nothing refers to goes; one younger than 10 minutes stays', async t => {
  const s = await setup(t)
  const young = Buffer.from('young')
  await s.pg.query('INSERT INTO blobs (sha256, size, content) VALUES ($1, $2, $3)', [createHash('sha256').update(young).digest('hex'), young.length, young])
  t.equal(await pruneBlobs(s.app.db), 1, 'one deleted')
  t.notOk(await stored(s), 'the old orphan is gone')
  t.equal((await s.pg.query('SELECT count(*)::int AS n FROM blobs')).rows[0].n, 1, 'the young one stays')
})

t.test('a writer holding the blob while the pass marks it: not marked, not deleted, and the pass does not wait', async t => {
  const s = await setup(t)
  let release = (): void => {}
  const gate = new Promise<void>(resolve => { release = resolve })
  let held = (): void => {}
  const holding = new Promise<void>(resolve => { held = resolve })
  const writer = s.app.db.transaction().execute(async trx => {
    await storeBlobs(trx, [s.orphan])
    held()
    await gate
  })
  await holding
  t.equal(await pruneBlobs(s.app.db), 0, 'nothing deleted while the writer holds it')
  t.ok(await stored(s), 'the blob stays')
  t.equal(await mark(s), null, 'and carries no mark')
  release()
  await writer
  // The writer made no reference after all: the next pass deletes it.
  t.equal(await pruneBlobs(s.app.db), 1, 'the next pass deletes it')
})

t.test('a writer that commits a reference after the marks: the confirmation sees it', async t => {
  const s = await setup(t)
  const deleted = await pruneBlobs(s.app.db, {
    marked: async () => {
      t.not(await mark(s), null, 'marked by the pass')
      await reuse(t, s)
    }
  })
  t.equal(deleted, 0, 'nothing deleted')
  t.ok(await stored(s), 'the blob stays')
  t.equal(await mark(s), null, 'its mark is cleared')
  await readBack(t, s)
})

t.test('a writer that reuses the blob after the confirmation: it clears the mark and the delete passes it by', async t => {
  const s = await setup(t)
  const deleted = await pruneBlobs(s.app.db, {
    confirmed: async () => {
      await reuse(t, s)
      t.equal(await mark(s), null, 'the writer cleared the mark')
    }
  })
  t.equal(deleted, 0, 'nothing deleted')
  t.ok(await stored(s), 'the blob stays')
  await readBack(t, s)
  t.equal(await pruneBlobs(s.app.db), 0, 'a later pass leaves it: a file refers to it')
})

t.test('a writer still open when the delete comes: the delete waits for it, then passes the blob by', async t => {
  const s = await setup(t)
  let writer: Promise<void> = Promise.resolve()
  const deleted = await pruneBlobs(s.app.db, {
    confirmed: async () => {
      let held = (): void => {}
      const holding = new Promise<void>(resolve => { held = resolve })
      writer = s.app.db.transaction().execute(async trx => {
        await storeBlobs(trx, [s.orphan])
        held()
        // long enough for the delete to be waiting on this row when it commits
        await new Promise(resolve => setTimeout(resolve, 500))
      })
      await holding
    }
  })
  await writer
  t.equal(deleted, 0, 'nothing deleted')
  t.ok(await stored(s), 'the blob stays')
  t.equal(await mark(s), null, 'unmarked')
})
