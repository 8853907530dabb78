import t from 'tap'
import { build, createTestDatabase, createWorkspace, dbClient, registerUser, sleep } from '../helpers/app.js'
import { expectStatus, isError, request, type WriteResult } from '../helpers/http.js'

/**
 * Issue "Hardening", finding 14: a request's time in a transaction is bounded
 * (DB_TRANSACTION_TIMEOUT_MS), not only each statement's. The statement bound is switched off
 * here, so only the transaction bound can end the request: the workspace's row is locked from
 * outside, and a write waits on it for as long as it is held.
 */
t.test('a transaction is bounded by DB_TRANSACTION_TIMEOUT_MS', async t => {
  const DATABASE_URL = await createTestDatabase(t)
  const app = await build(t, { DATABASE_URL, DB_TRANSACTION_TIMEOUT_MS: '1000', DB_STATEMENT_TIMEOUT_MS: '0', DB_POOL_MAX: '4', SESSION_END_POLL_MS: '60000' })
  const user = await registerUser(app)
  // Four workspaces: writes to one workspace share one transaction (group commit), so it takes
  // four to hold four connections at once.
  const workspaces = await Promise.all([1, 2, 3, 4].map(async i => await createWorkspace(app, user, `ws${i}`)))
  const workspaceId = workspaces[0] ?? ''
  const locker = await dbClient(t, DATABASE_URL)
  const url = (name: string, ws = workspaceId): string => `/v1/workspaces/${ws}/files/${name}`

  async function holdLock (ms: number): Promise<void> {
    await locker.query('BEGIN')
    await locker.query('SELECT id FROM workspaces WHERE id = ANY($1::uuid[]) FOR UPDATE', [workspaces])
    setTimeout(() => { void locker.query('COMMIT') }, ms)
  }

  t.test('within the bound: the write waits for the lock and succeeds', async t => {
    await holdLock(400)
    const res = await request(app, 'PUT', url('within.txt'), { token: user.token, payload: { content: 'x' } })
    t.equal(expectStatus<WriteResult>(res, 201, 'PUT').revision, 1)
  })

  t.test('past the bound: 503 UNAVAILABLE after about the bound, nothing written, the connection back in the pool', async t => {
    await holdLock(6_000)
    const started = Date.now()
    // Four at once: every connection of the pool would otherwise be held for as long as the lock.
    const replies = await Promise.all(workspaces.map(async ws => await request(app, 'PUT', url('past.txt', ws), { token: user.token, payload: { content: 'x' } })))
    const elapsed = Date.now() - started
    for (const res of replies) isError(t, res, 503, 'UNAVAILABLE')
    t.ok(elapsed >= 1_000 && elapsed < 3_500, `answered after the bound, not the lock (${elapsed} ms)`)
    await sleep(100)
    const pool = app.dbPool()
    t.equal(pool.waiting, 0, 'nobody waits for a connection')
    t.equal(pool.idle, pool.total, 'every connection is back in the pool')
    await sleep(6_000 - (Date.now() - started) + 200)
    for (const ws of workspaces) {
      const head = await request(app, 'GET', `/v1/workspaces/${ws}`, { token: user.token })
      t.equal(head.json<{ revision: number }>().revision, ws === workspaceId ? 1 : 0, 'no revision was taken')
      t.equal((await request(app, 'GET', url('past.txt', ws), { token: user.token })).statusCode, 404, 'nothing was written')
    }
  })

  t.test('after the lock is gone, writes go through as before', async t => {
    const res = await request(app, 'PUT', url('after.txt'), { token: user.token, payload: { content: 'x' } })
    t.equal(expectStatus<WriteResult>(res, 201, 'PUT').revision, 2)
  })
})
