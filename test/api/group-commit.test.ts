import t, { type Test } from 'tap'
import type pg from 'pg'
import { build, createTestDatabase, createWorkspace, dbClient, listen, registerUser, sleep, spawnServer, TEST_SECRET } from '../helpers/app.js'
import { expectStatus, request, type BatchResult, type OperationResult, type Res, type WriteResult } from '../helpers/http.js'
import { Ctx } from '../helpers/files.js'
import { connect, range } from '../helpers/ws.js'

/**
 * Group commit per workspace (src/mutations/group-commit.ts, issue 11): requests to one workspace
 * that arrive while a transaction for it is in flight share the next one, each in a savepoint of
 * its own. These tests make the groups form on purpose (a test client holds the workspace's row
 * lock while the requests queue) and check that every request still gets what it would alone.
 */

const N = 50
const MAX_MEMBERS = 10

const dbName = (url: string): string => new URL(url).pathname.slice(1)

/** Waits until `n` backends of the database wait on a lock (a group is in flight, blocked). */
async function untilLockWaits (admin: pg.Client, db: string, n: number, what: string): Promise<void> {
  const deadline = Date.now() + 20_000
  for (;;) {
    const { rows } = await admin.query<{ n: string }>("SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'", [db])
    if (Number(rows[0]?.n) >= n) return
    if (Date.now() > deadline) throw new Error(`no lock wait: ${what}`)
    await sleep(20)
  }
}

interface Seed { stale: string, mEtags: string[] }

/** The same start on every app: /seed.txt twice (its first etag is stale), then /m/0…/m/15. */
async function seed (c: Ctx): Promise<Seed> {
  const first = await c.write('/seed.txt', 'v0')
  await c.write('/seed.txt', 'v1', {})
  const made = expectStatus<BatchResult>(await c.batch(range(0, 15).map(j => ({ type: 'create', path: `/m/${j}.txt`, content: `m${j}` }))), 200, 'seed /m')
  return { stale: first.file.etag, mEtags: made.results.map(r => (r.data as { etag: string }).etag) }
}

interface Req {
  i: number
  /** fails whatever the order (the state it reads no request changes) */
  fails: boolean
  key: string | null
  send: (c: Ctx, s: Seed) => Promise<Res>
}

/**
 * 50 requests: every third one fails (a stale If-Match, a create of an existing path, a batch
 * whose second operation fails, If-None-Match on an existing file), the others succeed (new files,
 * If-Match updates with the right etag, batches of two); every success has an Idempotency-Key,
 * and requests 24 and 25 send the same key and request.
 */
function workload (): Req[] {
  const reqs: Req[] = []
  let m = 0
  for (let i = 0; i < N; i++) {
    const key = i === 24 || i === 25 ? 'dup' : `k${i}`
    const h = (k: string | null): Record<string, string> => k === null ? {} : { 'idempotency-key': k }
    if (i % 3 === 2) {
      const kind = Math.floor(i / 3) % 4
      const k = kind === 1 ? null : key
      const send = [
        async (c: Ctx, s: Seed) => await c.put('/seed.txt', { content: `stale ${i}` }, { 'if-match': `"${s.stale}"`, ...h(k) }),
        async (c: Ctx) => await c.op({ type: 'create', path: '/seed.txt', content: `exists ${i}` }, h(k)),
        async (c: Ctx) => await c.batch([{ type: 'create', path: `/f${i}/a.txt`, content: 'a' }, { type: 'delete', path: `/missing${i}` }], h(k)),
        async (c: Ctx) => await c.put('/seed.txt', { content: `none ${i}` }, { 'if-none-match': '*', ...h(k) })
      ][kind]
      if (send === undefined) throw new Error('kind')
      reqs.push({ i, fails: true, key: k, send })
      continue
    }
    const kind = i === 24 || i === 25 ? 0 : i % 3 === 0 ? 0 : (i % 9 === 1 ? 2 : 1)
    if (kind === 0) {
      const path = i === 24 || i === 25 ? '/dup.txt' : `/w/${i}.txt`
      reqs.push({ i, fails: false, key, send: async c => await c.put(path, { content: 'same' }, h(key)) })
    } else if (kind === 1) {
      const j = m++
      reqs.push({ i, fails: false, key, send: async (c, s) => await c.put(`/m/${j}.txt`, { content: `m${j} by ${i}` }, { 'if-match': `"${s.mEtags[j] ?? ''}"`, ...h(key) }) })
    } else {
      reqs.push({ i, fails: false, key, send: async c => await c.batch([{ type: 'mkdir', path: `/b${i}` }, { type: 'create', path: `/b${i}/x.txt`, content: `x${i}` }], h(key)) })
    }
  }
  return reqs
}

/** The revisions a successful response names (a batch: each of its operations'). */
function revisionsOf (res: Res): number[] {
  const body = res.json<Record<string, unknown>>()
  if (Array.isArray(body.results)) return (body as unknown as BatchResult).results.map(r => r.revision)
  return [(body as unknown as WriteResult | OperationResult).revision]
}

/** A response as it compares across apps: status and body, without times and the ids of this app. */
function normal (res: Res, c: Ctx): unknown {
  const ids = [c.ws, c.user.id, c.user.sessionId]
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return ids.reduce((s, id) => s.replaceAll(id, '<id>'), v)
    if (Array.isArray(v)) return v.map(walk)
    if (v !== null && typeof v === 'object') {
      return Object.fromEntries(Object.entries(v).filter(([k]) => !/^(at|timestamp|modifiedAt|createdAt|updatedAt)$/.test(k)).map(([k, x]) => [k, walk(x)]))
    }
    return v
  }
  return { status: res.statusCode, body: walk(JSON.parse(res.body)) }
}

async function activityRows (client: pg.Client, ws: string, expected: number | null): Promise<string[]> {
  const deadline = Date.now() + 10_000
  for (;;) {
    const { rows } = await client.query<{ r: string }>(
      "SELECT concat_ws('|', type, op, path, status, code, revision) AS r FROM activity WHERE workspace_id = $1 ORDER BY 1", [ws])
    if (expected === null || rows.length >= expected || Date.now() > deadline) return rows.map(r => r.r)
    await sleep(50)
  }
}

t.test(`${N} concurrent writers in groups: every response, revision, event and activity entry is what it would be alone`, async t => {
  const url = await createTestDatabase(t)
  const app = await build(t, { DATABASE_URL: url, GROUP_COMMIT_MAX_MEMBERS: String(MAX_MEMBERS) })
  const base = await listen(app)
  const user = await registerUser(app)
  const c = new Ctx(app, user, await createWorkspace(app, user))
  const s = await seed(c)
  const seedHead = await c.revision()
  const sock = await connect(t, base, { token: user.token })
  await sock.join(c.ws, seedHead)
  const admin = await dbClient(t, url)
  const locker = await dbClient(t, url)

  // The first request's group waits for the lock; the other 49 queue behind it, in order.
  const reqs = workload()
  await locker.query('BEGIN')
  await locker.query('SELECT 1 FROM workspaces WHERE id = $1 FOR UPDATE', [c.ws])
  const replies: Array<Promise<Res>> = []
  const [first, ...rest] = reqs
  if (first === undefined) throw new Error('no requests')
  replies.push(first.send(c, s))
  await untilLockWaits(admin, dbName(url), 1, 'the first group waits for the workspace lock')
  for (const r of rest) {
    replies.push(r.send(c, s))
    await sleep(15)
  }
  await sleep(300)
  await locker.query('COMMIT')
  const grouped = await Promise.all(replies)

  // Each request's outcome.
  for (const r of reqs) {
    const res = grouped[r.i]
    if (res === undefined) throw new Error('missing reply')
    if (r.fails) t.ok(res.statusCode >= 400 && res.statusCode < 500, `request ${r.i} fails on its own: ${res.statusCode} ${res.body.slice(0, 120)}`)
    else t.ok(res.statusCode === 200 || res.statusCode === 201, `request ${r.i} succeeds: ${res.statusCode} ${res.body.slice(0, 120)}`)
  }
  const [d24, d25] = [grouped[24], grouped[25]]
  t.same(d25?.json(), d24?.json(), 'the same key twice: the second replays the first, byte for byte')
  t.equal(d25?.statusCode, d24?.statusCode, 'and with its status')

  // Revisions: gap-free, each named by exactly one response, in commit order.
  const head = await c.revision()
  const named = reqs.filter(r => !r.fails && r.i !== 25).flatMap(r => revisionsOf(grouped[r.i] as Res))
  t.same([...named].sort((a, b) => a - b), range(seedHead + 1, head), 'the successes name every revision after the seed once: gap-free')
  const feed = await c.allChanges(seedHead)
  t.same(feed.changes.map(ch => ch.revision), range(seedHead + 1, head), 'the change feed is gap-free')

  // Events: each once, in order.
  const events = await sock.untilRevision(c.ws, head)
  t.same(events, range(seedHead + 1, head), 'the subscriber got every event once, in revision order')
  await sleep(200)
  t.same(sock.revisions(c.ws), range(seedHead + 1, head), 'and nothing more')

  // The groups really formed, bounded, with failures among their members. Successful members
  // store their key's response in the group's transaction, so its now() names their group.
  const { rows } = await admin.query<{ key: string, g: string }>(
    "SELECT key, created_at::text AS g FROM idempotency_keys WHERE user_id = $1 AND status_code < 300 AND key <> 'dup'", [user.id])
  const groups = new Map<string, number[]>()
  for (const row of rows) groups.set(row.g, [...(groups.get(row.g) ?? []), Number(row.key.slice(1))])
  const sizes = [...groups.values()].map(g => g.length)
  t.ok(groups.size >= 4 && groups.size < rows.length / 2, `the successes were committed in a few groups (${groups.size} groups: ${JSON.stringify([...groups.values()].map(g => g.sort((a, b) => a - b)))})`)
  t.ok(Math.max(...sizes) <= MAX_MEMBERS, `no group took more than GROUP_COMMIT_MAX_MEMBERS=${MAX_MEMBERS} requests (sizes ${sizes.join(',')})`)
  const spanning = [...groups.values()].filter(g => Math.max(...g) - Math.min(...g) >= 2)
  t.ok(spanning.length >= 3, 'several groups span more than two arrivals')
  for (const g of spanning) {
    const failing = reqs.filter(r => r.fails && r.i > Math.min(...g) && r.i < Math.max(...g))
    t.ok(failing.length > 0, `group ${JSON.stringify(g)} had failing members (${failing.map(f => f.i).join(',')}) and still committed the others`)
  }

  // The group-size histogram saw the same: groups of more than one, none above the bound.
  const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body
  const bucket = (le: string): number => Number(new RegExp(`^workbench_group_commit_size_bucket\\{le="${le}"\\} (\\d+)$`, 'm').exec(metrics)?.[1])
  const count = Number(/^workbench_group_commit_size_count (\d+)$/m.exec(metrics)?.[1])
  t.ok(count > 0 && bucket('1') < count, `workbench_group_commit_size: ${count} transactions, ${count - bucket('1')} of them groups of 2 or more`)
  t.equal(bucket('16'), count, `none of more than ${MAX_MEMBERS} (≤ 16)`)

  // The same requests, one at a time without group commit, in the grouped run's commit order
  // (the failures read only state no request changes, so they go last).
  const aloneUrl = await createTestDatabase(t)
  const aloneApp = await build(t, { DATABASE_URL: aloneUrl, GROUP_COMMIT: 'false' })
  const aloneUser = await registerUser(aloneApp)
  const a = new Ctx(aloneApp, aloneUser, await createWorkspace(aloneApp, aloneUser))
  const as = await seed(a)
  t.equal(await a.revision(), seedHead, 'the same seed')
  const order = [...reqs].sort((x, y) => {
    const rx = x.fails ? Infinity : Math.min(...revisionsOf(grouped[x.i] as Res))
    const ry = y.fails ? Infinity : Math.min(...revisionsOf(grouped[y.i] as Res))
    return rx - ry || x.i - y.i
  })
  const alone: Res[] = []
  for (const r of order) alone[r.i] = await r.send(a, as)
  for (const r of reqs) {
    t.same(normal(grouped[r.i] as Res, c), normal(alone[r.i] as Res, a), `request ${r.i}: the same response as alone`)
  }

  // Activity: one entry per request (a replay records none), the same as alone.
  // (the seed's 3 entries, and one per request but the replay)
  const aloneLog = await activityRows(await dbClient(t, aloneUrl), a.ws, 3 + N - 1)
  const groupedLog = await activityRows(admin, c.ws, 3 + N - 1)
  t.equal(aloneLog.length, 3 + N - 1, 'alone: an entry per request but the replay')
  t.same(groupedLog, aloneLog, 'the same activity entries as alone')
})

t.test('a server killed mid-group leaves every request all or nothing', async t => {
  const url = await createTestDatabase(t)
  const server = await spawnServer(t, { env: { DATABASE_URL: url, JWT_SECRET: TEST_SECRET } })
  const user = await registerUser(server.base)
  const ws = await createWorkspace(server.base, user)
  const put = async (path: string, key: string | null): Promise<Res> => await request(server.base, 'PUT', `/v1/workspaces/${ws}/files${path}`, {
    token: user.token, payload: { content: path }, headers: key === null ? {} : { 'idempotency-key': key }
  })
  expectStatus(await put('/seed.txt', null), 201, 'seed')
  const admin = await dbClient(t, url)
  const locker = await dbClient(t, url)
  const keyHolder = await dbClient(t, url)

  // The workspace is locked: request 0's group waits. Requests 1–8 queue for the next group;
  // request 5's key is held by an open transaction, so that group stops in the middle of it.
  await locker.query('BEGIN')
  await locker.query('SELECT 1 FROM workspaces WHERE id = $1 FOR UPDATE', [ws])
  await keyHolder.query('BEGIN')
  await keyHolder.query("INSERT INTO idempotency_keys (user_id, key, request_hash, status_code, body) VALUES ($1, 'blocker', 'x', 0, 'null')", [user.id])
  const paths = range(0, 8).map(i => `/g/${i}.txt`)
  const replies: Array<Promise<Res | Error>> = []
  const send = (i: number): void => { replies.push(put(paths[i] ?? '', i === 5 ? 'blocker' : i % 2 === 0 ? `k${i}` : null).catch((err: unknown) => err as Error)) }
  send(0)
  await untilLockWaits(admin, dbName(url), 1, 'request 0 waits for the workspace lock')
  // Requests 1–4 queue before request 5 whatever each takes to get there (those with a key look
  // it up first), so the next group reaches 5's key only after running 1–4.
  for (const i of range(1, 8)) {
    if (i === 5) await sleep(300)
    send(i)
    await sleep(20)
  }
  await sleep(300)
  await locker.query('COMMIT')
  const zero = await replies[0]
  t.equal((zero as Res).statusCode, 201, 'request 0 committed alone')
  // The next group ran members 1–4 and waits in member 5's key claim: a backend waiting on a lock
  // holds its writes to files and changes (polled: the first lock wait seen may come before it).
  const waitUntil = Date.now() + 20_000
  let midGroup = false
  while (!midGroup && Date.now() < waitUntil) {
    const { rows } = await admin.query<{ relation: string }>(`
      SELECT l.relation::regclass::text AS relation FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
      WHERE a.datname = $1 AND a.wait_event_type = 'Lock' AND l.granted AND l.mode = 'RowExclusiveLock'`, [dbName(url)])
    midGroup = rows.some(r => r.relation === 'files') && rows.some(r => r.relation === 'changes')
    if (!midGroup) await sleep(20)
  }
  t.ok(midGroup, 'the waiting group has already written files and changes (members before the held key ran): it is mid-group')
  server.kill('SIGKILL')
  await server.exited
  await keyHolder.query('ROLLBACK')
  const answers = await Promise.all(replies.slice(1))
  t.ok(answers.every(a => a instanceof Error), 'no request of the killed group was answered')

  // Once the killed server's backends are gone, nothing of its group is there.
  const mine = await Promise.all([admin, locker, keyHolder].map(async cl => Number((await cl.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid)))
  const deadline = Date.now() + 20_000
  for (;;) {
    const { rows } = await admin.query<{ n: string }>('SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1 AND pid <> ALL($2::int[])', [dbName(url), mine])
    if (Number(rows[0]?.n) === 0) break
    if (Date.now() > deadline) throw new Error('backends of the killed server still there')
    await sleep(50)
  }
  const revision = Number((await admin.query<{ revision: string }>('SELECT revision FROM workspaces WHERE id = $1', [ws])).rows[0]?.revision)
  const changes = (await admin.query<{ revision: string, path: string }>('SELECT revision, path FROM changes WHERE workspace_id = $1 ORDER BY revision', [ws])).rows
  t.same(changes.map(ch => Number(ch.revision)), range(1, revision), 'the revisions are gap-free')
  t.equal(revision, 2, 'the seed and request 0, nothing of the killed group')
  for (const [i, path] of paths.entries()) {
    const file = (await admin.query('SELECT 1 FROM files WHERE workspace_id = $1 AND path = $2', [ws, path])).rowCount ?? 0
    const change = changes.filter(ch => ch.path === path).length
    const activity = (await admin.query('SELECT 1 FROM activity WHERE workspace_id = $1 AND path = $2 AND status < 300', [ws, path])).rowCount ?? 0
    const key = i % 2 === 0 && i !== 5 ? (await admin.query('SELECT 1 FROM idempotency_keys WHERE user_id = $1 AND key = $2', [user.id, `k${i}`])).rowCount ?? 0 : null
    const parts = [file, change, activity, ...(key === null ? [] : [key])]
    const all = i === 0 ? 1 : 0
    t.same(parts, parts.map(() => all), `request ${i}: ${all === 1 ? 'all' : 'none'} of it (file, change, activity${key === null ? '' : ', key'})`)
  }

  // A new server on the same database goes on from there.
  const again = await spawnServer(t, { env: { DATABASE_URL: url, JWT_SECRET: TEST_SECRET } })
  const res = await request(again.base, 'PUT', `/v1/workspaces/${ws}/files/g/1.txt`, { token: user.token, payload: { content: 'after' } })
  t.equal(expectStatus<WriteResult>(res, 201, 'write after restart').revision, 3, 'the next write takes the next revision')
})

t.test('a group whose connection is lost mid-group: the members that ran fail as alone (503), nothing of them stays, the rest run in the next group', async t => {
  const url = await createTestDatabase(t)
  const app = await build(t, { DATABASE_URL: url })
  const user = await registerUser(app)
  const c = new Ctx(app, user, await createWorkspace(app, user))
  await c.write('/seed.txt', 'seed')
  const admin = await dbClient(t, url)
  const locker = await dbClient(t, url)
  const keyHolder = await dbClient(t, url)
  await locker.query('BEGIN')
  await locker.query('SELECT 1 FROM workspaces WHERE id = $1 FOR UPDATE', [c.ws])
  await keyHolder.query('BEGIN')
  await keyHolder.query("INSERT INTO idempotency_keys (user_id, key, request_hash, status_code, body) VALUES ($1, 'blocker', 'x', 0, 'null')", [user.id])
  const write = async (i: number): Promise<Res> => await c.put(`/g/${i}.txt`, { content: String(i) }, i === 5 ? { 'idempotency-key': 'blocker' } : {})
  const replies = [write(0)]
  await untilLockWaits(admin, dbName(url), 1, 'request 0 waits for the workspace lock')
  for (const i of range(1, 8)) {
    replies.push(write(i))
    // (in arrival order, even on a busy machine; request 5 first looks its key up, one query more)
    await sleep(i === 5 ? 500 : 60)
  }
  await sleep(300)
  await locker.query('COMMIT')
  t.equal((await replies[0])?.statusCode, 201, 'request 0 committed alone')
  await untilLockWaits(admin, dbName(url), 1, 'the next group waits in member 5\'s key claim')
  const { rows } = await admin.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'", [dbName(url)])
  t.equal(rows.length, 1, 'one backend waits: the group\'s')
  await admin.query('SELECT pg_terminate_backend($1)', [rows[0]?.pid])
  const answers = await Promise.all(replies.slice(1))
  await keyHolder.query('ROLLBACK')
  t.same(answers.map(r => r.statusCode), [503, 503, 503, 503, 503, 201, 201, 201], 'members 1–5 ran in the lost transaction: 503; 6–8 went to the next group')
  t.equal(answers[0]?.json<{ code: string }>().code, 'UNAVAILABLE', 'UNAVAILABLE, as alone')
  t.same(answers.slice(5).map(r => r.json<WriteResult>().revision), [3, 4, 5], 'the next group took the next revisions')
  const feed = await c.allChanges()
  t.same(feed.changes.map(ch => [ch.revision, ch.path]), [[1, '/seed.txt'], [2, '/g/0.txt'], [3, '/g/6.txt'], [4, '/g/7.txt'], [5, '/g/8.txt']], 'gap-free; nothing of members 1–5')
  t.same(await c.allPaths('/g'), ['/g/0.txt', '/g/6.txt', '/g/7.txt', '/g/8.txt'], 'their files are not there')
})

t.test('one file, one group: each member reads it as the members before it left it, never as one rolled back left it', async t => {
  const url = await createTestDatabase(t)
  const app = await build(t, { DATABASE_URL: url })
  const user = await registerUser(app)
  const c = new Ctx(app, user, await createWorkspace(app, user))
  const v0 = await c.write('/x.txt', 'v0')
  const admin = await dbClient(t, url)
  const locker = await dbClient(t, url)
  await locker.query('BEGIN')
  await locker.query('SELECT 1 FROM workspaces WHERE id = $1 FOR UPDATE', [c.ws])
  const h = v0.revision
  const failingBatch = [{ type: 'update', path: '/x.txt', content: 'rolled back' }, { type: 'delete', path: '/missing.txt' }]
  const sends = [
    async () => await c.put('/first.txt', { content: 'alone' }),
    // rolled back to its savepoint (it has a key) after its update ran
    async () => await c.batch(failingBatch, { 'idempotency-key': 'k1' }),
    async () => await c.put('/x.txt', { content: 'v1' }, { 'if-match': `"${v0.file.etag}"` }),
    async () => await c.put('/x.txt', { content: 'stale' }, { 'if-match': `"${v0.file.etag}"` }),
    // no key, so no savepoint: the whole group runs again, this one then in a savepoint
    async () => await c.batch(failingBatch),
    async () => await c.put('/x.txt', { content: 'v2' }, { 'if-match': `"${h + 2}"` }),
    async () => await c.put('/x.txt', { content: 'v3' })
  ]
  const replies = [sends[0]!()]
  await untilLockWaits(admin, dbName(url), 1, 'the first request waits for the workspace lock')
  for (const send of sends.slice(1)) {
    replies.push(send())
    await sleep(60)
  }
  await locker.query('COMMIT')
  const answers = await Promise.all(replies)
  t.same(answers.map(r => r.statusCode), [201, 404, 200, 412, 404, 200, 200], 'each as alone, in arrival order')
  t.same(answers.map(r => r.statusCode < 300 ? r.json<WriteResult>().revision : null), [h + 1, null, h + 2, null, null, h + 3, h + 4], 'gap-free')
  t.match(answers[3]?.json(), { code: 'PRECONDITION_FAILED', details: { current: { etag: String(h + 2), version: 2 } } }, 'the stale one saw the update before it')
  t.match(answers[6]?.json<WriteResult>().file, { etag: String(h + 4), version: 4 }, 'the last one updated the version before it')
  t.equal((await c.read('/x.txt')).content, 'v3')
})

/**
 * Groups overlap (src/mutations/group-commit.ts `#drain`): once a group goes on to commit, the
 * next one starts and its lock's statement waits in PostgreSQL. With one member per group, each
 * request names the etag the one before it writes: it is found only if the next group reads the
 * entries as the group before committed them (sql/011-entries-after-lock.sql), not as its own
 * statement's snapshot, taken before the wait, saw them. One connection in the pool too: the
 * group that hands over needs no other, so the next waits for its connection, not forever.
 */
t.test('the next group starts while the one before commits: it reads what that one wrote and answers after it', async t => {
  for (const pool of ['20', '1']) {
    const url = await createTestDatabase(t)
    const app = await build(t, { DATABASE_URL: url, GROUP_COMMIT_MAX_MEMBERS: '1', DB_POOL_MAX: pool })
    const user = await registerUser(app)
    const c = new Ctx(app, user, await createWorkspace(app, user))
    const v0 = await c.write('/x.txt', 'v0')
    const h = v0.revision
    const admin = await dbClient(t, url)
    const locker = await dbClient(t, url)
    await locker.query('BEGIN')
    await locker.query('SELECT 1 FROM workspaces WHERE id = $1 FOR UPDATE', [c.ws])
    const answered: number[] = []
    const send = (i: number): Promise<Res> => c.put('/x.txt', { content: `v${i}` }, { 'if-match': `"${i === 1 ? v0.file.etag : h + i - 1}"` })
      .then(res => { answered.push(i); return res })
    const replies = [send(1)]
    await untilLockWaits(admin, dbName(url), 1, 'the first group waits for the workspace lock')
    for (let i = 2; i <= 8; i++) {
      replies.push(send(i))
      await sleep(30)
    }
    await locker.query('COMMIT')
    const answers = await Promise.all(replies)
    t.same(answers.map(r => r.statusCode), range(1, 8).map(() => 200), `pool ${pool}: each found the etag the one before it wrote`)
    t.same(answers.map(r => r.json<WriteResult>().revision), range(1, 8).map(i => h + i), `pool ${pool}: gap-free, in arrival order`)
    t.same(answered, range(1, 8), `pool ${pool}: answered in revision order`)
    t.equal((await c.read('/x.txt')).content, 'v8')
  }
})

type Send = (i: number, c: Ctx, etags: Record<string, string>) => Promise<Res>

/**
 * Requests 1…n-1 queued behind request 0 (the workspace's lock held by a test client): one group
 * of requests without keys, whose single-file writes are deferred (src/files/entry-memo.ts). Then
 * the same requests one at a time without group commit, in the grouped run's commit order (a
 * refused one right after the last success that arrived before it), and every response, change,
 * history entry and file compared.
 */
async function groupedAndAlone (t: Test, n: number, seedAll: (c: Ctx) => Promise<Record<string, string>>, send: Send, paths: string[]): Promise<Res[]> {
  const url = await createTestDatabase(t)
  const app = await build(t, { DATABASE_URL: url })
  const user = await registerUser(app)
  const c = new Ctx(app, user, await createWorkspace(app, user))
  const etags = await seedAll(c)
  const seedHead = await c.revision()
  const admin = await dbClient(t, url)
  const locker = await dbClient(t, url)
  await locker.query('BEGIN')
  await locker.query('SELECT 1 FROM workspaces WHERE id = $1 FOR UPDATE', [c.ws])
  const replies = [send(0, c, etags)]
  await untilLockWaits(admin, dbName(url), 1, 'request 0 waits for the workspace lock')
  for (const i of range(1, n - 1)) {
    replies.push(send(i, c, etags))
    await sleep(60)
  }
  await locker.query('COMMIT')
  const grouped = await Promise.all(replies)

  const aloneUrl = await createTestDatabase(t)
  const aloneApp = await build(t, { DATABASE_URL: aloneUrl, GROUP_COMMIT: 'false' })
  const aloneUser = await registerUser(aloneApp)
  const a = new Ctx(aloneApp, aloneUser, await createWorkspace(aloneApp, aloneUser))
  const aloneEtags = await seedAll(a)
  const committedAt = (i: number): number => {
    for (let j = i; j >= 0; j--) {
      const r = grouped[j] as Res
      if (r.statusCode < 300) return r.json<WriteResult>().revision + (j === i ? 0 : 0.5)
    }
    return 0
  }
  const alone: Res[] = []
  for (const i of range(0, n - 1).sort((x, y) => committedAt(x) - committedAt(y) || x - y)) alone[i] = await send(i, a, aloneEtags)
  for (const i of range(0, n - 1)) t.same(normal(grouped[i] as Res, c), normal(alone[i] as Res, a), `request ${i}: the same response as alone`)
  const feed = async (x: Ctx): Promise<unknown> => (await x.allChanges(seedHead)).changes.map(({ at: _, userId: __, sessionId: ___, ...ch }) => ch)
  t.same(await feed(c), await feed(a), 'the same changes')
  for (const path of paths) {
    const history = async (x: Ctx): Promise<unknown> => normal(await x.getUrl(`/v1/workspaces/${x.ws}/history${path}?limit=100`), x)
    t.same(await history(c), await history(a), `the same history of ${path}`)
    t.same(normal(await c.get(path), c), normal(await a.get(path), a), `the same ${path}`)
  }
  t.same(normal(await c.getUrl(`/v1/workspaces/${c.ws}/tree?depth=5`), c), normal(await a.getUrl(`/v1/workspaces/${a.ws}/tree?depth=5`), a), 'the same tree')
  return grouped
}

t.test('updates without a key, left to the group and sent together: every response, change, history entry and file as alone', async t => {
  // Requests 1–19 form one group behind request 0; none has a key, so the updates are deferred
  // and the creates among them (in a new directory: a statement of their own) make the group
  // send what it holds.
  const send: Send = (i, c, etags) => {
    switch (i % 4) {
      case 0: return c.put('/a.txt', { content: `a${i}` })
      case 1: return c.put('/b.txt', { content: `b${i}` }, { 'if-match': `"${etags['/b.txt'] ?? ''}"` }) // the first wins
      case 2: return c.put(`/c${i % 3}.txt`, { content: `c${i}` }, { 'if-match': '*' })
      default: return c.put(`/new/${i}.txt`, { content: `new${i}` })
    }
  }
  const seedAll = async (c: Ctx): Promise<Record<string, string>> => {
    const etags: Record<string, string> = {}
    for (const path of ['/a.txt', '/b.txt', '/c0.txt', '/c1.txt', '/c2.txt']) etags[path] = (await c.write(path, 'seed')).file.etag
    return etags
  }
  const grouped = await groupedAndAlone(t, 20, seedAll, send, ['/a.txt', '/b.txt', '/c0.txt', '/c1.txt', '/c2.txt', '/new/3.txt'])
  const bWins = range(0, 19).filter(i => i % 4 === 1 && grouped[i]?.statusCode === 200)
  t.equal(bWins.length, 1, 'one If-Match update of /b.txt wins')
  t.same(grouped.map((r, i) => i % 4 === 1 ? (bWins.includes(i) ? 200 : 412) === r.statusCode : r.statusCode === (i % 4 === 3 ? 201 : 200)), grouped.map(() => true), 'the others 412; the rest 200, the creates 201')
})

t.test('creates without a key, left to the group: a file created, then updated, refused, deleted in the same group, as alone', async t => {
  // Each request i writes /d/<i % 5>.txt, so every file is written four times in the group: the
  // first creates it (deferred: the group inserts it as the last deferred write left it), the
  // next updates it (If-Match `*`: it exists by then), a create of it is refused (409 with the
  // row the group holds), and the last deletes it (a statement of its own: the group first sends
  // what it holds). Creates under a new directory take a statement of their own for it.
  const send: Send = async (i, c) => {
    const path = `/d/${i % 5}.txt`
    switch (Math.floor(i / 5)) {
      case 0: return await c.put(path, { content: `made ${i}` }, { 'if-none-match': '*' })
      case 1: return await c.put(path, { content: `then ${i}` }, { 'if-match': '*' })
      case 2: return await c.op({ type: 'create', path, content: `again ${i}` })
      default: return i % 5 === 4 ? await c.put(`/e/${i}/x.txt`, { content: 'nested' }) : await c.op({ type: 'delete', path })
    }
  }
  const seedAll = async (c: Ctx): Promise<Record<string, string>> => {
    await c.write('/d/seed.txt', 'seed')
    return {}
  }
  const grouped = await groupedAndAlone(t, 20, seedAll, send, ['/d/0.txt', '/d/4.txt', '/e/19/x.txt'])
  t.same(grouped.map(r => r.statusCode), [...range(0, 4).map(() => 201), ...range(0, 4).map(() => 200), ...range(0, 4).map(() => 409), 200, 200, 200, 200, 201], 'created, updated, refused, deleted (and one nested create)')
})

t.test('a group is bounded by the bytes of its requests', async t => {
  const url = await createTestDatabase(t)
  const app = await build(t, { DATABASE_URL: url, GROUP_COMMIT_MAX_BYTES: '2500' })
  const user = await registerUser(app)
  const c = new Ctx(app, user, await createWorkspace(app, user))
  const admin = await dbClient(t, url)
  const locker = await dbClient(t, url)
  await locker.query('BEGIN')
  await locker.query('SELECT 1 FROM workspaces WHERE id = $1 FOR UPDATE', [c.ws])
  const write = async (i: number): Promise<Res> => await c.put(`/big/${i}.txt`, { content: 'x'.repeat(1000) }, { 'idempotency-key': `b${i}` })
  const replies = [write(0)]
  await untilLockWaits(admin, dbName(url), 1, 'the first group waits for the workspace lock')
  for (const i of range(1, 8)) {
    replies.push(write(i))
    await sleep(15)
  }
  await sleep(300)
  await locker.query('COMMIT')
  t.same((await Promise.all(replies)).map(r => r.statusCode), range(0, 8).map(() => 201), 'all written')
  const { rows } = await admin.query<{ n: string }>('SELECT count(*) AS n FROM idempotency_keys WHERE user_id = $1 GROUP BY created_at ORDER BY min(key)', [user.id])
  t.same(rows.map(r => Number(r.n)), [1, 2, 2, 2, 2], 'the first alone, then two of about 1,000 bytes per group of at most 2,500')
})

t.test('GROUP_COMMIT=false: every request alone, the same answers', async t => {
  const c = await (async () => {
    const app = await build(t, { GROUP_COMMIT: 'false' })
    const user = await registerUser(app)
    return new Ctx(app, user, await createWorkspace(app, user))
  })()
  const replies = await Promise.all(range(1, 20).map(async i => await c.put(`/p/${i}.txt`, { content: String(i) })))
  t.same(replies.map(r => r.statusCode), replies.map(() => 201), 'all written')
  t.same(replies.map(r => r.json<WriteResult>().revision).sort((a, b) => a - b), range(1, 20), 'gap-free')
})

t.test('a member cancelled by the statement timeout: the members before it commit, those not run yet fail at once with 503 (not queued again)', async t => {
  const url = await createTestDatabase(t)
  const app = await build(t, { DATABASE_URL: url, DB_STATEMENT_TIMEOUT_MS: '1500' })
  const user = await registerUser(app)
  const c = new Ctx(app, user, await createWorkspace(app, user))
  await c.write('/seed.txt', 'seed')
  const admin = await dbClient(t, url)
  const locker = await dbClient(t, url)
  const keyHolder = await dbClient(t, url)
  await locker.query('BEGIN')
  await locker.query('SELECT 1 FROM workspaces WHERE id = $1 FOR UPDATE', [c.ws])
  await keyHolder.query('BEGIN')
  await keyHolder.query("INSERT INTO idempotency_keys (user_id, key, request_hash, status_code, body) VALUES ($1, 'blocker', 'x', 0, 'null')", [user.id])
  const BLOCKER = 4
  const write = async (i: number): Promise<Res> => await c.put(`/g/${i}.txt`, { content: String(i) }, { 'idempotency-key': i === BLOCKER ? 'blocker' : `c${i}` })
  const replies = [write(0)]
  await untilLockWaits(admin, dbName(url), 1, 'request 0 waits for the workspace lock')
  for (const i of range(1, 8)) {
    replies.push(write(i))
    await sleep(60)
  }
  await sleep(300)
  await locker.query('COMMIT')
  t.equal((await replies[0])?.statusCode, 201, 'request 0 committed alone')
  // The next group (1–8, in the order they reached the queue) runs its members until the
  // blocker's key claim waits for the held key, until the statement timeout cancels it.
  const started = Date.now()
  const answers = await Promise.all(replies.slice(1))
  const waited = Date.now() - started
  const blocker = answers[BLOCKER - 1]
  t.equal(blocker?.statusCode, 503, 'the cancelled member: 503')
  const ok = range(1, 8).filter(i => answers[i - 1]?.statusCode === 201)
  const failed = range(1, 8).filter(i => i !== BLOCKER && answers[i - 1]?.statusCode !== 201)
  t.same([...ok, ...failed, BLOCKER].sort(), range(1, 8), `every other request committed (${ok.join(',')}) or failed (${failed.join(',')})`)
  t.ok(ok.length >= 2 && failed.length >= 2, 'members ran before the cancelled one, and some had not run yet')
  for (const i of [...failed, BLOCKER]) {
    const r = answers[i - 1] as Res
    t.equal(r.statusCode, 503, `request ${i}: 503`)
    t.equal(r.json<{ code: string }>().code, 'UNAVAILABLE', 'UNAVAILABLE')
    t.ok(r.headers['retry-after'] !== undefined, 'with Retry-After')
  }
  t.ok(waited < 1500 + 1200, `the unrun members were answered with the cancelled one, not after another wait (${waited} ms)`)
  const { rows: stalled } = await admin.query("SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'", [dbName(url)])
  t.equal(stalled.length, 0, 'no group waits on the held key any more')
  await keyHolder.query('ROLLBACK')
  t.same(ok.map(i => (answers[i - 1] as Res).json<WriteResult>().revision).sort((a, b) => a - b), range(3, 2 + ok.length), 'the committed members took the next revisions, gap-free')
  t.same(await c.allPaths('/g'), ['/g/0.txt', ...ok.map(i => `/g/${i}.txt`)].sort(), 'nothing of the failed ones is there')
  const { rows: keys } = await admin.query<{ key: string }>('SELECT key FROM idempotency_keys WHERE user_id = $1 ORDER BY key', [user.id])
  t.same(keys.map(k => k.key), ['c0', ...ok.map(i => `c${i}`)].sort(), 'no key is recorded for the failed ones: a retry with the same key runs')
  const retried = failed[0] ?? 0
  const again = await c.put(`/g/${retried}.txt`, { content: String(retried) }, { 'idempotency-key': `c${retried}` })
  t.equal(again.statusCode, 201, `retried with its key, request ${retried} is applied`)
  t.equal(again.json<WriteResult>().revision, 3 + ok.length, 'at the next revision: gap-free')
})

/**
 * The statement that takes the workspace's lock also reads the entries the group names
 * (files/entry-memo.ts `lock`). When it had to wait for the lock while another instance
 * committed, the statement's own snapshot is from before that commit (PostgreSQL re-reads only
 * the locked row), so the entries are read by a function called once the lock is granted
 * (sql/011-entries-after-lock.sql). Two instances, the same If-Match, queued on a lock a test
 * client holds: exactly one write wins; the other is refused with the winner's etag (it must not
 * overwrite it).
 */
t.test('two instances racing on the lock with the same If-Match: one wins, the other gets 412', async t => {
  const url = await createTestDatabase(t)
  const a = await build(t, { DATABASE_URL: url })
  const b = await build(t, { DATABASE_URL: url })
  const user = await registerUser(a)
  const workspaceId = await createWorkspace(a, user)
  const file = `/v1/workspaces/${workspaceId}/files/race.txt`
  const first = expectStatus<WriteResult>(await request(a, 'PUT', file, { token: user.token, payload: { content: 'v1' } }), 201, 'v1')
  const admin = await dbClient(t, url)
  const holder = await dbClient(t, url)
  await holder.query('BEGIN')
  await holder.query('SELECT 1 FROM workspaces WHERE id = $1 FOR UPDATE', [workspaceId])
  const put = (app: typeof a, content: string): Promise<Res> => request(app, 'PUT', file, { token: user.token, payload: { content }, headers: { 'if-match': `"${first.file.etag}"` } })
  const fromB = put(b, 'from b')
  await untilLockWaits(admin, dbName(url), 1, 'b waits')
  const fromA = put(a, 'from a')
  await untilLockWaits(admin, dbName(url), 2, 'a waits')
  await holder.query('COMMIT')
  const answers = await Promise.all([fromB, fromA])
  t.same(answers.map(r => r.statusCode).sort(), [200, 412], 'one write wins, the other is refused')
  const won = answers.find(r => r.statusCode === 200)
  const lost = answers.find(r => r.statusCode === 412)
  const winner = JSON.parse(won?.body ?? '{}') as WriteResult
  const refusal = JSON.parse(lost?.body ?? '{}') as { code: string, details: { current: { etag: string } } }
  t.equal(refusal.code, 'PRECONDITION_FAILED')
  t.equal(refusal.details.current.etag, winner.file.etag, 'the refusal names the winner\'s etag')
  const read = await request(a, 'GET', `${file}?format=json`, { token: user.token })
  t.equal((JSON.parse(read.body) as { content: string }).content, answers[0]?.statusCode === 200 ? 'from b' : 'from a', 'the winner\'s content stays')
})
