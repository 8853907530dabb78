import t from 'tap'
import pg from 'pg'
import { privatePostgres, privateRedis } from '../helpers/faults.js'
import { createWorkspace, registerUser, sleep, spawnServer, TEST_SECRET } from '../helpers/app.js'
import { request } from '../helpers/http.js'
import { connect, range } from '../helpers/ws.js'

/**
 * Faults injected for real, on private PostgreSQL and Redis servers: terminated connections, a
 * stopped database, SIGTERM during a batch, Redis stopped and restarted during a stream.
 */

const env = (databaseUrl: string, extra: Record<string, string> = {}): Record<string, string> => ({
  DATABASE_URL: databaseUrl, JWT_SECRET: TEST_SECRET, RETENTION_INTERVAL_MS: '0', ...extra
})

t.test('PostgreSQL faults: terminated connections, a stopped server, recovery', async t => {
  const db = await privatePostgres(t)
  const server = await spawnServer(t, { env: env(db.url) })
  const user = await registerUser(server.base)
  const ws = await createWorkspace(server.base, user)
  const file = `/v1/workspaces/${ws}/files/a.txt`
  t.equal((await request(server.base, 'PUT', file, { token: user.token, payload: { content: 'one' } })).statusCode, 201)

  // Every connection of the server's pool, killed by the database.
  const admin = new pg.Client({ connectionString: db.url })
  await admin.connect()
  const killed = await admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'workbench-api'")
  await admin.end()
  t.ok((killed.rowCount ?? 0) > 0, `terminated ${killed.rowCount ?? 0} connections`)
  await sleep(100)
  for (const i of range(1, 10)) {
    const read = await request(server.base, 'GET', file, { token: user.token })
    t.equal(read.statusCode, 200, `read ${i} after the terminations succeeds`)
    const write = await request(server.base, 'PUT', file, { token: user.token, payload: { content: `v${i}` } })
    t.equal(write.statusCode, 200, `write ${i} after the terminations succeeds`)
  }
  t.equal((await request(server.base, 'GET', '/health')).statusCode, 200)

  // The database stops: 503 UNAVAILABLE with Retry-After, within the connect timeout.
  await db.stop('fast')
  const started = Date.now()
  const res = await fetch(server.base + file, { headers: { authorization: `Bearer ${user.token}` } })
  const elapsed = Date.now() - started
  const body = await res.json() as { code: string }
  t.equal(res.status, 503, 'a request while the database is down answers 503')
  t.equal(body.code, 'UNAVAILABLE')
  t.ok(res.headers.get('retry-after') !== null, 'with Retry-After')
  t.ok(elapsed < 8_000, `answered in ${elapsed} ms (connect timeout 5 s)`)
  t.equal((await request(server.base, 'GET', '/ready')).statusCode, 503, '/ready is 503')
  t.equal((await request(server.base, 'GET', '/health')).statusCode, 200, '/health stays 200: the process serves')

  // It comes back: the server recovers without a restart.
  await db.start()
  const deadline = Date.now() + 20_000
  let status = 0
  while (Date.now() < deadline) {
    status = (await request(server.base, 'GET', file, { token: user.token })).statusCode
    if (status === 200) break
    await sleep(200)
  }
  t.equal(status, 200, 'reads work again once the database is back')
  t.equal((await request(server.base, 'GET', '/ready')).statusCode, 200)
  t.equal((await request(server.base, 'PUT', file, { token: user.token, payload: { content: 'after' } })).statusCode, 200)
  t.equal(server.output().includes('Unhandled'), false, 'no unhandled errors')
})

t.test('SIGTERM during a batch write: all of it or none, and exit 0 within the grace period', async t => {
  const db = await privatePostgres(t)
  const server = await spawnServer(t, { env: env(db.url) })
  const user = await registerUser(server.base)
  const ws = await createWorkspace(server.base, user)
  const operations = range(1, 1000).map(i => ({ type: 'create', path: `/batch/f${i}.txt`, content: `file ${i}`.repeat(20) }))
  const batch = fetch(`${server.base}/v1/workspaces/${ws}/operations/batch`, {
    method: 'POST',
    headers: { authorization: `Bearer ${user.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ operations })
  }).then(r => r.status, () => 0)
  await sleep(150)
  const signalled = Date.now()
  process.kill(server.pid, 'SIGTERM')
  const code = await server.exited
  const took = Date.now() - signalled
  t.equal(code, 0, 'exits 0')
  t.ok(took < 15_000, `exited ${took} ms after SIGTERM`)
  const status = await batch
  const client = new pg.Client({ connectionString: db.url })
  await client.connect()
  const files = await client.query<{ n: string }>("SELECT count(*) AS n FROM files WHERE workspace_id = $1 AND kind = 'file'", [ws])
  const head = await client.query<{ revision: string }>('SELECT revision FROM workspaces WHERE id = $1', [ws])
  const changes = await client.query<{ n: string }>('SELECT count(*) AS n FROM changes WHERE workspace_id = $1', [ws])
  await client.end()
  const n = Number(files.rows[0]?.n)
  t.ok(n === 0 || n === 1000, `${n} files: all or none`)
  t.equal(Number(head.rows[0]?.revision), n, 'the revision counts exactly the committed changes')
  t.equal(Number(changes.rows[0]?.n), n, 'one change per committed op, none for an uncommitted batch')
  if (status === 200) t.equal(n, 1000, 'a 200 means the whole batch committed')
})

t.test('Redis stopped and restarted during a stream of writes: requests keep working, no event is lost', async t => {
  const db = await privatePostgres(t)
  const redis = await privateRedis(t)
  const server = await spawnServer(t, { env: env(db.url, { REDIS_URL: redis.url, RATE_LIMIT_ENABLED: 'true', RATE_LIMIT_MAX: '100000' }) })
  const user = await registerUser(server.base)
  const ws = await createWorkspace(server.base, user)
  const client = await connect(t, server.base, { token: user.token })
  await client.subscribe(ws, 0)

  const failures: string[] = []
  let written = 0
  const write = async (): Promise<void> => {
    written++
    const res = await request(server.base, 'PUT', `/v1/workspaces/${ws}/files/f${written % 7}.txt`, { token: user.token, payload: { content: `write ${written}` } })
    if (res.statusCode >= 300) failures.push(`PUT ${res.statusCode} ${res.body}`)
    const read = await request(server.base, 'GET', `/v1/workspaces/${ws}/files/f${written % 7}.txt`, { token: user.token })
    if (read.statusCode !== 200) failures.push(`GET ${read.statusCode}`)
  }
  for (let i = 0; i < 20; i++) await write()
  await redis.stop()
  for (let i = 0; i < 30; i++) await write()
  await redis.start()
  for (let i = 0; i < 20; i++) await write()
  t.same(failures, [], 'no request failed while Redis was down or coming back')
  t.equal(written, 70)

  const revisions = await client.untilRevision(ws, 70, 30_000)
  t.same(revisions, range(1, 70), 'the subscriber got every revision, in order, once')
})

t.test('boot while PostgreSQL and Redis are down: the server waits for them instead of crashing', async t => {
  const db = await privatePostgres(t)
  const redis = await privateRedis(t)
  await db.stop('fast')
  await redis.stop()
  const server = await spawnServer(t, { env: env(db.url, { REDIS_URL: redis.url, STARTUP_TIMEOUT_MS: '60000' }), wait: false })
  // The dependencies come back only once the server is seen waiting (its start may be slow).
  for (let i = 0; i < 300 && !/database not reachable yet; retrying/.test(server.output()); i++) await sleep(100)
  await db.start()
  await sleep(1_000)
  await redis.start()
  t.ok(await server.ready(60_000), `ready: ${server.output().slice(-1000)}`)
  t.equal((await request(server.base, 'GET', '/ready')).statusCode, 200, 'ready once both answer')
  const user = await registerUser(server.base)
  const ws = await createWorkspace(server.base, user)
  t.equal((await request(server.base, 'PUT', `/v1/workspaces/${ws}/files/a.txt`, { token: user.token, payload: { content: 'up' } })).statusCode, 201)
  t.match(server.output(), /database not reachable yet; retrying/, 'it said what it was waiting for')
  t.notMatch(server.output(), /Unhandled error event/, 'every Redis connection had an error listener')
})

t.test('a dependency that never comes up stops the start after STARTUP_TIMEOUT_MS, with a clear error', async t => {
  const db = await privatePostgres(t)
  await db.stop('fast')
  const started = Date.now()
  const failed = await spawnServer(t, { env: env(db.url, { STARTUP_TIMEOUT_MS: '2000' }) }).then(() => 'started', (err: Error) => err.message)
  t.match(failed, /server exited before it was ready/, 'the process exits')
  t.ok(Date.now() - started < 20_000, 'soon after the timeout')
})
