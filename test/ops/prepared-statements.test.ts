import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { build, createWorkspace, dbClient, createTestDatabase, registerUser, type TestUser } from '../helpers/app.js'
import { expectStatus, request, type WriteResult } from '../helpers/http.js'

/**
 * DB_PREPARED_STATEMENTS: the statements compiled once (src/db/compiled.ts: the write path's and
 * the uncached read's) go to PostgreSQL as named prepared statements, parsed and planned once per
 * connection (plugins/app/database.ts). One connection in the pool, so the statements a request
 * ran are the ones that connection holds (`pg_prepared_statements` shows a session's own).
 */

async function backendOf (app: FastifyInstance): Promise<number> {
  return (await app.pg.pool.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid ?? 0
}

async function preparedOn (app: FastifyInstance): Promise<string[]> {
  const client = await app.pg.pool.connect()
  try {
    const { rows } = await client.query<{ name: string, statement: string }>("SELECT name, statement FROM pg_prepared_statements WHERE name LIKE 'wb\\_%' ORDER BY statement")
    for (const row of rows) if (!/^wb_[\w-]{24}$/.test(row.name)) throw new Error(`unexpected statement name ${row.name}`)
    return rows.map(r => r.statement)
  } finally {
    client.release()
  }
}

/** A write, a second write with the first one's etag (the statements run again, now only bound) and an uncached read. */
async function writeAndRead (t: Test, app: FastifyInstance, user: TestUser, workspaceId: string, name: string): Promise<void> {
  const url = `/v1/workspaces/${workspaceId}/files/${name}`
  const first = expectStatus<WriteResult>(await request(app, 'PUT', url, { token: user.token, payload: { content: 'one' } }), 201, 'PUT')
  const second = expectStatus<WriteResult>(await request(app, 'PUT', url, { token: user.token, payload: { content: 'two' }, headers: { 'if-match': `"${first.file.etag}"` } }), 200, 'PUT with If-Match')
  t.equal(second.revision, first.revision + 1, 'the second write took the next revision')
  const stale = await request(app, 'PUT', url, { token: user.token, payload: { content: 'three' }, headers: { 'if-match': `"${first.file.etag}"` } })
  t.equal(stale.statusCode, 412, 'a stale If-Match is still refused')
  const read = await request(app, 'GET', url, { token: user.token })
  t.equal(read.statusCode, 200)
  t.equal(read.json<{ content: string }>().content, 'two', 'the read sees the second write')
}

/** An app with one pooled connection and no read cache, after `writeAndRead` of /a.txt. */
async function setUp (t: Test, env: Record<string, string> = {}): Promise<{ DATABASE_URL: string, app: FastifyInstance, user: TestUser, workspaceId: string }> {
  const DATABASE_URL = await createTestDatabase(t)
  const app = await build(t, { DATABASE_URL, DB_POOL_MAX: '1', CACHE_MAX_BYTES: '0', CACHE_REDIS: 'false', ...env })
  const user = await registerUser(app)
  const workspaceId = await createWorkspace(app, user)
  await writeAndRead(t, app, user, workspaceId, 'a.txt')
  return { DATABASE_URL, app, user, workspaceId }
}

t.test('on (the default): the write path and the uncached read are prepared once per connection, and again on a new connection', async t => {
  const { DATABASE_URL, app, user, workspaceId } = await setUp(t)
  const statements = await preparedOn(app)
  t.ok(statements.some(s => s.startsWith('insert into "blobs"')), 'the blob insert')
  t.ok(statements.some(s => /^with "w" as materialized \(select .* from "workspaces" .* for update\) .*entries_after_lock/s.test(s)), 'the lock statement')
  t.ok(statements.some(s => s.startsWith('with ') && s.includes('insert into "changes"') && s.includes('insert into "activity"')), 'the change statement, with the activity entry')
  t.notOk(statements.some(s => /"users"|"sessions"/.test(s)), 'nothing else: statements built per call stay unnamed')

  // The connection lost: the pool's next connection prepares them again.
  const before = await backendOf(app)
  const admin = await dbClient(t, DATABASE_URL)
  await admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'workbench-api'")
  await new Promise(resolve => setTimeout(resolve, 200))
  await writeAndRead(t, app, user, workspaceId, 'b.txt')
  t.not(await backendOf(app), before, 'a new connection')
  t.same(await preparedOn(app), statements, 'the same statements, prepared again on the new connection')
})

t.test('a statement that failed (its table gone) runs again once the table is back, on the same connection', async t => {
  const { DATABASE_URL, app, user, workspaceId } = await setUp(t)
  const backend = await backendOf(app)
  const admin = await dbClient(t, DATABASE_URL)
  await admin.query('ALTER TABLE blobs RENAME TO blobs_away')
  try {
    const failed = await request(app, 'PUT', `/v1/workspaces/${workspaceId}/files/gone.txt`, { token: user.token, payload: { content: 'gone' } })
    t.equal(failed.statusCode, 500, 'the write fails while the table is gone')
  } finally {
    await admin.query('ALTER TABLE blobs_away RENAME TO blobs')
  }
  t.equal((await request(app, 'GET', `/v1/workspaces/${workspaceId}/files/gone.txt`, { token: user.token })).statusCode, 404, 'nothing of it was written')
  await writeAndRead(t, app, user, workspaceId, 'b.txt')
  t.equal(await backendOf(app), backend, 'on the same connection: its prepared statements were planned again')
})

t.test('DB_PREPARED_STATEMENTS=false: the same requests, nothing prepared', async t => {
  const { app } = await setUp(t, { DB_PREPARED_STATEMENTS: 'false' })
  t.same(await preparedOn(app), [], 'no named statement')
})
