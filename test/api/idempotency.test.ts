import t from 'tap'
import { build, createTestDatabase, createWorkspace, dbClient, listen, registerUser } from '../helpers/app.js'
import { isError, type Res, type RevertResult } from '../helpers/http.js'
import { Ctx } from '../helpers/files.js'
import { connect } from '../helpers/ws.js'

/**
 * Issue 5, Idempotency-Key: a retry with the same key, user and body within 24 h returns the first
 * response (status and body) and applies nothing again, even while the first is in flight on
 * another instance (the retry waits for it: documented choice, no 409 IN_PROGRESS in practice).
 */

const json = (r: Res): unknown => JSON.parse(r.body)
const keyed = (key: string, extra: Record<string, string> = {}): Record<string, string> => ({ 'idempotency-key': key, ...extra })

t.test('the same key sent concurrently to two instances on one database applies the write once', async t => {
  const url = await createTestDatabase(t)
  // Two apps in one process under a parallel test run: the event-loop-delay shedding (not under test here) is off.
  const env = { DATABASE_URL: url, OVERLOAD_MAX_EVENT_LOOP_DELAY_MS: '0' }
  const one = await build(t, env)
  const two = await build(t, env)
  const user = await registerUser(one)
  const a = new Ctx(one, user, await createWorkspace(one, user))
  const b = new Ctx(two, user, a.ws)

  // Several rounds, each a different kind of write, so the race is not won by luck once.
  const rounds: Array<{ key: string, send: (c: Ctx) => Promise<Res>, status: number }> = []
  for (let i = 0; i < 8; i++) {
    rounds.push({ key: `put-${i}`, send: async c => await c.put(`/p${i}.txt`, { content: `p${i}` }, keyed(`put-${i}`)), status: 201 })
    rounds.push({ key: `op-${i}`, send: async c => await c.op({ type: 'create', path: `/o${i}.txt`, content: `o${i}` }, keyed(`op-${i}`)), status: 200 })
  }
  rounds.push({ key: 'batch', send: async c => await c.batch([{ type: 'mkdir', path: '/m' }, { type: 'create', path: '/m/x', content: 'x' }], keyed('batch')), status: 200 })
  rounds.push({ key: 'del', send: async c => await c.del('/p0.txt', keyed('del')), status: 200 })

  for (const round of rounds) {
    const before = await a.revision()
    const [x, y] = await Promise.all([round.send(a), round.send(b)])
    t.equal(x.statusCode, round.status, `${round.key}: instance one ${x.body.slice(0, 200)}`)
    t.equal(y.statusCode, round.status, `${round.key}: instance two`)
    t.same(json(y), json(x), `${round.key}: both callers got the same body`)
    const after = await a.revision()
    const expected = round.key === 'batch' ? 2 : 1
    t.equal(after, before + expected, `${round.key}: applied once (revision +${expected})`)
    const changes = (await a.changes(before)).changes
    t.equal(changes.length, expected, `${round.key}: ${expected} change(s) in the feed`)
    t.ok(changes.every(c => c.opId === round.key), `${round.key}: the change's opId is the key`)
  }
})

t.test('sequential retries replay the first response and apply nothing', async t => {
  const url = await createTestDatabase(t)
  const app = await build(t, { DATABASE_URL: url })
  const user = await registerUser(app)
  const ctx = new Ctx(app, user, await createWorkspace(app, user))

  await t.test('a 201 create, replayed as 201 with the same body', async t => {
    const first = await ctx.put('/a.txt', { content: 'one' }, keyed('k-create'))
    t.equal(first.statusCode, 201)
    const rev = await ctx.revision()
    const again = await ctx.put('/a.txt', { content: 'one' }, keyed('k-create'))
    t.equal(again.statusCode, 201, 'still 201, not 200 for an update')
    t.same(json(again), json(first), 'same body, same etag and times')
    t.equal(again.headers.etag, first.headers.etag, 'same ETag header')
    t.equal(await ctx.revision(), rev, 'nothing applied')
    t.equal((await ctx.read('/a.txt')).version, 1, 'still version 1')
    const feed = await ctx.changes(0)
    t.same(feed.changes.map(c => [c.op, c.path, c.opId]), [['create', '/a.txt', 'k-create']], 'one change, carrying the key as its opId')
  })

  await t.test('a replay does not apply even when the state changed since', async t => {
    const first = await ctx.put('/b.txt', { content: 'b1' }, keyed('k-b'))
    t.equal(first.statusCode, 201)
    t.equal((await ctx.put('/b.txt', { content: 'b2' })).statusCode, 200, 'someone updates it')
    const rev = await ctx.revision()
    const again = await ctx.put('/b.txt', { content: 'b1' }, keyed('k-b'))
    t.equal(again.statusCode, 201)
    t.same(json(again), json(first))
    t.equal((await ctx.read('/b.txt')).content, 'b2', 'the later update is not overwritten by the retry')
    t.equal(await ctx.revision(), rev)
  })

  await t.test('a 412 failure is replayed as the same 412, even once the precondition would hold', async t => {
    const w = await ctx.write('/c.txt', 'c1')
    const stale = `"${Number(w.file.etag) + 1000}"`
    const first = await ctx.put('/c.txt', { content: 'c2' }, keyed('k-412', { 'if-match': stale }))
    isError(t, first, 412, 'PRECONDITION_FAILED', 'first')
    const again = await ctx.put('/c.txt', { content: 'c2' }, keyed('k-412', { 'if-match': stale }))
    isError(t, again, 412, 'PRECONDITION_FAILED', 'retry')
    t.same(json(again), json(first), 'same error body')
    t.equal((await ctx.read('/c.txt')).content, 'c1')
  })

  await t.test('a 409 failure is replayed even after the conflict went away', async t => {
    await ctx.write('/d.txt', 'there')
    const first = await ctx.op({ type: 'create', path: '/d.txt', content: 'mine' }, keyed('k-409'))
    isError(t, first, 409, 'FILE_EXISTS', 'first')
    t.equal((await ctx.del('/d.txt')).statusCode, 200)
    const rev = await ctx.revision()
    const again = await ctx.op({ type: 'create', path: '/d.txt', content: 'mine' }, keyed('k-409'))
    t.same([again.statusCode, json(again)], [409, json(first)], 'the first answer again')
    t.equal((await ctx.get('/d.txt')).statusCode, 404, 'and nothing created')
    t.equal(await ctx.revision(), rev)
  })

  await t.test('the same key with a different body is 422 IDEMPOTENCY_KEY_REUSED', async t => {
    const first = await ctx.put('/e.txt', { content: 'e' }, keyed('k-e'))
    t.equal(first.statusCode, 201)
    const rev = await ctx.revision()
    isError(t, await ctx.put('/e.txt', { content: 'other' }, keyed('k-e')), 422, 'IDEMPOTENCY_KEY_REUSED', 'different content')
    isError(t, await ctx.put('/e2.txt', { content: 'e' }, keyed('k-e')), 422, 'IDEMPOTENCY_KEY_REUSED', 'different path')
    isError(t, await ctx.op({ type: 'create', path: '/e.txt', content: 'e' }, keyed('k-e')), 422, 'IDEMPOTENCY_KEY_REUSED', 'a different route')
    isError(t, await ctx.del('/e.txt', keyed('k-e')), 422, 'IDEMPOTENCY_KEY_REUSED', 'DELETE with that key')
    t.equal(await ctx.revision(), rev, 'none applied')
    t.equal((await ctx.read('/e.txt')).content, 'e')
    // The same body, keys in another order, is the same request.
    const first2 = await ctx.put('/f.txt', { content: 'f', metadata: { a: 1, b: 2 } }, keyed('k-f'))
    const again2 = await ctx.put('/f.txt', { metadata: { b: 2, a: 1 }, content: 'f' }, keyed('k-f'))
    t.same([again2.statusCode, json(again2)], [first2.statusCode, json(first2)], 'key order does not matter')
  })

  await t.test('the same key by another user is independent', async t => {
    const other = await registerUser(app)
    await app.inject({ method: 'PUT', url: `/v1/workspaces/${ctx.ws}/members`, headers: user.auth, payload: { email: other.email, role: 'editor' } })
    const theirs = new Ctx(app, other, ctx.ws)
    const first = await ctx.put('/g.txt', { content: 'g' }, keyed('shared'))
    t.equal(first.statusCode, 201)
    const rev = await ctx.revision()
    const second = await theirs.put('/g.txt', { content: 'g' }, keyed('shared'))
    t.equal(second.statusCode, 200, 'applied for them: an update of the existing file')
    t.equal(await ctx.revision(), rev + 1)
    const changes = (await ctx.changes(rev)).changes
    t.same(changes.map(c => [c.userId, c.opId]), [[other.id, 'shared']])
    const third = await theirs.put('/h.txt', { content: 'other body' }, keyed('k-e'))
    t.equal(third.statusCode, 201, 'a key another user used with another body is not 422 for them')
  })

  await t.test('DELETE, batch and revert replay too, and their changes carry the key', async t => {
    await ctx.write('/dir/x.txt', 'x')
    await ctx.write('/dir/y.txt', 'y')
    const del = await ctx.del('/dir', keyed('k-del'))
    t.equal(del.statusCode, 200)
    t.equal(del.json<{ deleted: number }>().deleted, 3)
    let rev = await ctx.revision()
    const delAgain = await ctx.del('/dir', keyed('k-del'))
    t.same([delAgain.statusCode, json(delAgain)], [200, json(del)], 'DELETE replayed, not 404')
    t.equal(await ctx.revision(), rev)
    t.equal((await ctx.changes(rev - 1)).changes[0]?.opId, 'k-del')

    const ops = [{ type: 'create', path: '/bt/1', content: '1' }, { type: 'move', path: '/bt/1', newPath: '/bt/2' }]
    const batch = await ctx.batch(ops, keyed('k-batch'))
    t.equal(batch.statusCode, 200)
    rev = await ctx.revision()
    const batchAgain = await ctx.batch(ops, keyed('k-batch'))
    t.same([batchAgain.statusCode, json(batchAgain)], [200, json(batch)])
    t.equal(await ctx.revision(), rev)
    t.same((await ctx.changes(rev - 2)).changes.map(c => c.opId), ['k-batch', 'k-batch'])

    const target = rev - 2
    const revertUrl = `/v1/workspaces/${ctx.ws}/revert`
    const revert = await app.inject({ method: 'POST', url: revertUrl, headers: { ...user.auth, ...keyed('k-revert') }, payload: { toRevision: target } })
    t.equal(revert.statusCode, 200, revert.body)
    // The move back, then the directory created for the batch's file, with the file in it.
    t.same(revert.json<RevertResult>().changes.map(c => [c.op, c.path, c.newPath]), [['move', '/bt/2', '/bt/1'], ['delete', '/bt', null]])
    rev = await ctx.revision()
    const revertOther = await app.inject({ method: 'POST', url: revertUrl, headers: { ...user.auth, ...keyed('k-revert') }, payload: { toRevision: target - 1 } })
    isError(t, revertOther, 422, 'IDEMPOTENCY_KEY_REUSED', 'a revert to another revision with that key')
    const revertSame = await app.inject({ method: 'POST', url: revertUrl, headers: { ...user.auth, ...keyed('k-revert') }, payload: { toRevision: target } })
    t.same([revertSame.statusCode, json(revertSame)], [200, json(revert)], 'revert replayed')
    t.equal(await ctx.revision(), rev, 'and not applied twice')
    t.same((await ctx.changes(rev - 2)).changes.map(c => c.opId), ['k-revert', 'k-revert'], 'the revert\'s changes carry the key as opId')
  })

  await t.test('keys older than 24 h are treated as new', async t => {
    const pg = await dbClient(t, url)
    const first = await ctx.put('/old.txt', { content: 'old' }, keyed('k-old'))
    t.equal(first.statusCode, 201)
    const reused = await ctx.put('/old2.txt', { content: 'other' }, keyed('k-old2'))
    t.equal(reused.statusCode, 201)
    const moved = await pg.query("UPDATE idempotency_keys SET created_at = now() - interval '24 hours 1 minute' WHERE key IN ('k-old', 'k-old2')")
    t.equal(moved.rowCount, 2, 'aged both keys by 24 h')
    const rev = await ctx.revision()
    const again = await ctx.put('/old.txt', { content: 'old' }, keyed('k-old'))
    t.equal(again.statusCode, 200, 'applied again: an update now')
    t.equal(await ctx.revision(), rev + 1)
    const other = await ctx.put('/old2.txt', { content: 'a different body' }, keyed('k-old2'))
    t.equal(other.statusCode, 200, 'an expired key with another body is not 422')
    t.equal((await ctx.read('/old2.txt')).content, 'a different body')
    const replay = await ctx.put('/old.txt', { content: 'old' }, keyed('k-old'))
    t.same([replay.statusCode, json(replay)], [200, json(again)], 'the new use of the key is kept and replayed')
    const fresh = await pg.query("UPDATE idempotency_keys SET created_at = now() - interval '23 hours' WHERE key = 'k-old'")
    t.equal(fresh.rowCount, 1)
    const within = await ctx.put('/old.txt', { content: 'old' }, keyed('k-old'))
    t.same([within.statusCode, json(within)], [200, json(again)], 'at 23 h it still replays')
  })
})

t.test('RPC over WebSocket: params.idempotencyKey replays the first result', async t => {
  const app = await build(t)
  const user = await registerUser(app)
  const ctx = new Ctx(app, user, await createWorkspace(app, user))
  const base = await listen(app)
  const client = await connect(t, base, { token: user.token })

  const params = { workspaceId: ctx.ws, path: '/rpc.txt', content: 'rpc', idempotencyKey: 'k-rpc' }
  const first = await client.rpc('files.write', params)
  t.equal(first.type, 'rpc.result', JSON.stringify(first))
  const rev = await ctx.revision()
  const again = await client.rpc('files.write', params)
  t.same(again.result, first.result, 'same result')
  t.equal(await ctx.revision(), rev, 'applied once')
  t.equal((await ctx.changes(rev - 1)).changes[0]?.opId, 'k-rpc', 'opId carries the key')
  const reused = await client.rpc('files.write', { ...params, content: 'other' })
  t.match(reused, { type: 'rpc.error', error: { code: 'IDEMPOTENCY_KEY_REUSED' } }, 'different params: 422 code')

  // The REST route and the RPC method are the same request: a REST retry of an RPC write replays it.
  const rest = await ctx.put('/rpc.txt', { content: 'rpc' }, keyed('k-rpc'))
  t.same([rest.statusCode, json(rest)], [201, first.result], 'REST retry of the RPC write gets its result')

  const op = { workspaceId: ctx.ws, type: 'create', path: '/rpc.txt', content: 'dup', idempotencyKey: 'k-rpc-fail' }
  const failed = await client.rpc('operations.apply', op)
  t.match(failed, { type: 'rpc.error', error: { code: 'FILE_EXISTS' } }, 'first: FILE_EXISTS')
  const failedAgain = await client.rpc('operations.apply', op)
  t.match(failedAgain, { type: 'rpc.error', error: { code: 'FILE_EXISTS' } }, 'a replayed failure is an rpc.error again, not a result')
  client.close()
})
