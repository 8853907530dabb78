import t from 'tap'
import { build, createTestDatabase, createWorkspace, dbClient, listen, registerUser, sleep, untilLockWait } from '../helpers/app.js'
import { sha256 } from '../helpers/files.js'
import { expectStatus, isError, request, type WriteResult } from '../helpers/http.js'
import { scrape, value } from '../helpers/metrics.js'
import { connect } from '../helpers/ws.js'

/**
 * The metrics of issue "Contract and observability" (item 5), each read after provoking it for
 * real: statement and transaction durations, a lock wait, a deadlock, cache evictions and bytes,
 * WebSocket resumes and connections; and the same figures in /v1/stats.
 */

t.test('database: statements, transactions, a lock wait and a deadlock', async t => {
  const DATABASE_URL = await createTestDatabase(t)
  const app = await build(t, { DATABASE_URL })
  const user = await registerUser(app)
  const workspaceId = await createWorkspace(app, user)
  const outside = await dbClient(t, DATABASE_URL)
  const put = async (name: string, content: string): ReturnType<typeof request> =>
    await request(app, 'PUT', `/v1/workspaces/${workspaceId}/files/${name}`, { token: user.token, payload: { content } })

  const before = await scrape(app)
  expectStatus<WriteResult>(await put('a.txt', 'a'), 201, 'PUT')
  const after = await scrape(app)
  t.ok(value(after, 'workbench_db_query_duration_seconds_count', { outcome: 'ok' }) > value(before, 'workbench_db_query_duration_seconds_count', { outcome: 'ok' }), 'statements are timed')
  t.ok(value(after, 'workbench_db_transaction_duration_seconds_count') > value(before, 'workbench_db_transaction_duration_seconds_count'), 'connection holds are timed')
  t.equal(value(after, 'workbench_db_lock_wait_seconds_count') - value(before, 'workbench_db_lock_wait_seconds_count'), 1, 'one write: one workspace lock taken')

  t.test('a write that waits 400 ms for the workspace lock shows it in the lock wait and the transaction', async t => {
    const s0 = await scrape(app)
    await outside.query('BEGIN')
    await outside.query('SELECT id FROM workspaces WHERE id = $1 FOR UPDATE', [workspaceId])
    const waiting = put('b.txt', 'b')
    await untilLockWait(outside)
    await sleep(400)
    await outside.query('COMMIT')
    expectStatus<WriteResult>(await waiting, 201, 'PUT')
    const s1 = await scrape(app)
    const waited = value(s1, 'workbench_db_lock_wait_seconds_sum') - value(s0, 'workbench_db_lock_wait_seconds_sum')
    t.ok(waited >= 0.35, `lock wait ${waited.toFixed(3)} s`)
    t.equal(value(s1, 'workbench_db_lock_wait_seconds_bucket', { le: '0.25' }) - value(s0, 'workbench_db_lock_wait_seconds_bucket', { le: '0.25' }), 0, 'not in the buckets below the wait')
    const held = value(s1, 'workbench_db_transaction_duration_seconds_sum') - value(s0, 'workbench_db_transaction_duration_seconds_sum')
    t.ok(held >= 0.35, `transaction held ${held.toFixed(3)} s`)
  })

  t.test('a deadlock between a write and another transaction: counted, and answered 503 UNAVAILABLE', async t => {
    const content = 'deadlock me'
    const s0 = await scrape(app)
    // The outside transaction holds the workspace row; the write stores its blob, then waits for
    // the row; the outside transaction then inserts the same blob, and waits for the write.
    await outside.query('BEGIN')
    await outside.query('SELECT id FROM workspaces WHERE id = $1 FOR UPDATE', [workspaceId])
    const writing = put('c.txt', content)
    await untilLockWait(outside)
    const blocked = outside.query('INSERT INTO blobs (sha256, size, content) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING', [sha256(content), content.length, Buffer.from(content)])
      .then(() => 'done', (err: { code?: string }) => err.code ?? 'error')
    const res = await writing
    const outsideOutcome = await blocked
    await outside.query('ROLLBACK')
    const s1 = await scrape(app)
    const deadlocks = value(s1, 'workbench_db_conflicts_total', { kind: 'deadlock' }) - value(s0, 'workbench_db_conflicts_total', { kind: 'deadlock' })
    if (res.statusCode === 503) {
      isError(t, res, 503, 'UNAVAILABLE', 'the request conflicted with another one at the same time; retry')
      t.equal(deadlocks, 1, 'the deadlock the write lost is counted')
    } else {
      // PostgreSQL chose the outside transaction as the victim: the write went through.
      t.equal(outsideOutcome, '40P01', 'the other side lost the deadlock')
      t.equal(res.statusCode, 201)
    }
    t.equal(value(s1, 'workbench_db_query_duration_seconds_count', { outcome: 'error' }) > value(s0, 'workbench_db_query_duration_seconds_count', { outcome: 'error' }), res.statusCode === 503, 'failed statements are timed as errors')
  })
})

t.test('cache evictions and bytes, WebSocket connections and resumes, and /v1/stats', async t => {
  const DATABASE_URL = await createTestDatabase(t)
  // A small in-process cache: 64 KiB, so a few 20 KiB reads evict.
  const app = await build(t, { DATABASE_URL, CACHE_MAX_BYTES: String(64 * 1024), CACHE_REDIS: 'false' })
  const base = await listen(app)
  const user = await registerUser(app)
  const workspaceId = await createWorkspace(app, user)
  for (let i = 0; i < 8; i++) expectStatus<WriteResult>(await request(app, 'PUT', `/v1/workspaces/${workspaceId}/files/f${i}.txt`, { token: user.token, payload: { content: String(i).repeat(20_000) } }), 201, 'PUT')

  const s0 = await scrape(app)
  for (let i = 0; i < 8; i++) t.equal((await request(app, 'GET', `/v1/workspaces/${workspaceId}/files/f${i}.txt`, { token: user.token })).statusCode, 200)
  const s1 = await scrape(app)
  t.ok(value(s1, 'workbench_cache_evictions_total', { layer: 'memory' }) - value(s0, 'workbench_cache_evictions_total', { layer: 'memory' }) >= 4, 'reading 160 KB through a 64 KiB cache evicts')
  const held = value(s1, 'workbench_cache_bytes', { layer: 'memory' })
  t.ok(held > 20_000 && held <= 64 * 1024, `bytes held within the bound (${held})`)

  const ws = await connect(t, base, { token: user.token })
  await ws.subscribe(workspaceId)
  await ws.subscribe(workspaceId, 3)
  const s2 = await scrape(app)
  t.equal(value(s2, 'workbench_ws_connections_opened_total') - value(s1, 'workbench_ws_connections_opened_total'), 1, 'one connection opened')
  t.equal(value(s2, 'workbench_ws_subscriptions_total', { resume: 'false' }) - value(s1, 'workbench_ws_subscriptions_total', { resume: 'false' }), 1, 'one fresh subscription')
  t.equal(value(s2, 'workbench_ws_subscriptions_total', { resume: 'true' }) - value(s1, 'workbench_ws_subscriptions_total', { resume: 'true' }), 1, 'one resume (with since)')
  t.equal(value(s2, 'workbench_ws_connections'), 1, 'sockets on this instance')

  await app.db.updateTable('users').set({ permissions: ['file.read', 'file.write', 'admin'] }).where('id', '=', user.id).execute()
  const stats = (await request(app, 'GET', '/v1/stats', { token: user.token })).json<{
    db: { deadlocks: number, serializationFailures: number }
    websocket: { connections: number, connectionsOpened: number, subscriptions: number, resumes: number }
    cache: { evictions: number, bytes: { memory?: number, redis?: number } }
  }>()
  t.match(stats.websocket, { connections: 1, connectionsOpened: 1, subscriptions: 2, resumes: 1 })
  t.equal(stats.cache.evictions, value(s2, 'workbench_cache_evictions_total'), 'the same evictions as /metrics')
  t.equal(stats.cache.bytes.memory, value(s2, 'workbench_cache_bytes', { layer: 'memory' }))
  t.notOk('redis' in stats.cache.bytes, 'no Redis layer here')
  t.match(stats.db, { deadlocks: 0, serializationFailures: 0 })
  ws.close()
})
