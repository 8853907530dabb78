import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { build, createTestDatabase, createWorkspace, REDIS_URL, registerUser, sleep } from '../helpers/app.js'

/** Sums a counter's samples in Prometheus text, over all its label sets. */
function counter (text: string, name: string): number {
  let total = 0
  for (const line of text.split('\n')) {
    if (line.startsWith(name + '{') || line.startsWith(name + ' ')) total += Number(line.slice(line.lastIndexOf(' ') + 1))
  }
  return total
}

async function cacheCounts (app: FastifyInstance): Promise<{ hits: number, misses: number }> {
  const text = (await app.inject({ url: '/metrics' })).body
  return { hits: counter(text, 'workbench_cache_hits_total'), misses: counter(text, 'workbench_cache_misses_total') }
}

t.test('two instances: a write on A is read on B at once; reads hit the cache', async t => {
  const url = await createTestDatabase(t)
  const a = await build(t, { DATABASE_URL: url, REDIS_URL })
  const b = await build(t, { DATABASE_URL: url, REDIS_URL })
  const user = await registerUser(a)
  const ws = await createWorkspace(a, user)
  const file = `/v1/workspaces/${ws}/files/src/app.ts`

  for (let i = 1; i <= 5; i++) {
    const put = await a.inject({ method: 'PUT', url: file, headers: user.auth, payload: { content: `version ${i}` } })
    t.ok(put.statusCode === 200 || put.statusCode === 201, put.body)
    // The writing instance reads its own write at once.
    const own = await a.inject({ url: file, headers: user.auth })
    t.equal(own.json<{ content: string }>().content, `version ${i}`, `A reads version ${i} right after writing it`)
    // B has cached the previous version; it reads this one as soon as the change event arrives.
    const started = Date.now()
    let content = ''
    while (Date.now() - started < 2_000) {
      content = (await b.inject({ url: file, headers: user.auth })).json<{ content: string }>().content
      if (content === `version ${i}`) break
      await sleep(5)
    }
    t.equal(content, `version ${i}`, `B reads version ${i} once the event arrived (${Date.now() - started} ms)`)
  }

  const before = await cacheCounts(b)
  for (let i = 0; i < 200; i++) {
    const read = await b.inject({ url: file, headers: user.auth })
    t.equal(read.statusCode, 200)
  }
  const after = await cacheCounts(b)
  const hits = after.hits - before.hits
  const misses = after.misses - before.misses
  t.ok(hits + misses >= 200, `every read counted (${hits} hits, ${misses} misses)`)
  t.ok(hits / (hits + misses) > 0.9, `hit rate ${(hits / (hits + misses)).toFixed(3)} above 90%`)

  // A delete on A: B answers 404 once the event arrived, not a cached file.
  const del = await a.inject({ method: 'DELETE', url: file, headers: user.auth })
  t.equal(del.statusCode, 200)
  const deadline = Date.now() + 2_000
  let status = 0
  while (Date.now() < deadline && (status = (await b.inject({ url: file, headers: user.auth })).statusCode) !== 404) {
    await sleep(5)
  }
  t.equal(status, 404, 'B answers 404 after the delete')

  // A removed member loses access on both instances (here at once, there through the access event).
  const other = await registerUser(a)
  const add = await a.inject({ method: 'PUT', url: `/v1/workspaces/${ws}/members`, headers: user.auth, payload: { email: other.email, role: 'viewer' } })
  t.equal(add.statusCode, 200)
  await a.inject({ method: 'PUT', url: file, headers: user.auth, payload: { content: 'back' } })
  for (const app of [a, b]) {
    for (let i = 0; i < 3; i++) await app.inject({ url: file, headers: other.auth })
  }
  const removed = await a.inject({ method: 'DELETE', url: `/v1/workspaces/${ws}/members/${other.id}`, headers: user.auth })
  t.equal(removed.statusCode, 204)
  t.equal((await a.inject({ url: file, headers: other.auth })).statusCode, 404, 'on A at once')
  const until = Date.now() + 2_000
  let onB = 0
  while (Date.now() < until && (onB = (await b.inject({ url: file, headers: other.auth })).statusCode) !== 404) {
    await sleep(5)
  }
  t.equal(onB, 404, 'on B once the access event arrived')
})

t.test('with the in-process cache off, reads go to Redis, and to PostgreSQL when Redis has nothing', async t => {
  const app = await build(t, { REDIS_URL, CACHE_MAX_BYTES: '0' })
  const user = await registerUser(app)
  const ws = await createWorkspace(app, user)
  const file = `/v1/workspaces/${ws}/files/a.txt`
  await app.inject({ method: 'PUT', url: file, headers: user.auth, payload: { content: 'hello' } })
  const text0 = (await app.inject({ url: '/metrics' })).body
  await app.inject({ url: file, headers: user.auth })
  await app.inject({ url: file, headers: user.auth })
  const text1 = (await app.inject({ url: '/metrics' })).body
  t.equal(counter(text1, 'workbench_cache_hits_total{layer="memory"}') - counter(text0, 'workbench_cache_hits_total{layer="memory"}'), 0, 'no memory hits')
  t.ok(counter(text1, 'workbench_cache_hits_total{layer="redis"}') - counter(text0, 'workbench_cache_hits_total{layer="redis"}') >= 2, 'the second read hits Redis')
})

t.test('an entry larger than the whole in-process cache is still served', async t => {
  const app = await build(t, { CACHE_MAX_BYTES: '1024' })
  const user = await registerUser(app)
  const ws = await createWorkspace(app, user)
  // Larger than the whole in-process cache: still served, just not kept.
  const big = 'x'.repeat(4096)
  await app.inject({ method: 'PUT', url: `/v1/workspaces/${ws}/files/big.txt`, headers: user.auth, payload: { content: big } })
  const read = await app.inject({ url: `/v1/workspaces/${ws}/files/big.txt`, headers: user.auth })
  t.equal(read.json<{ content: string }>().content, big)
})
