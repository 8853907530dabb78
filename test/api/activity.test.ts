import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import t from 'tap'
import { ChatLogMirror } from '../../src/mutations/chat-log.js'
import { build, createWorkspace, listen, registerUser, sleep } from '../helpers/app.js'
import { isError, type ActivityRecord, type ActivityPage, type Res, type SessionSummary } from '../helpers/http.js'
import { Ctx } from '../helpers/files.js'
import { allActivity, newSession } from '../helpers/history.js'
import { connect } from '../helpers/ws.js'

/**
 * Issue 5, activity log: every mutation of a session, success or failure, in order; the same as
 * Markdown (log.md) and mirrored to CHAT_LOG_DIR; sessions are private to their user.
 *
 * Decisions asserted here:
 * - A fresh user's session starts with one `auth.register` entry (status 201, no workspace), so
 *   20 mutations give 21 entries, and one failed update after them makes 22.
 * - `operations` in GET /v1/sessions counts every entry but WebSocket connect/disconnect (so the
 *   auth.register entry counts); `errors` counts entries with status >= 400.
 * - The CHAT_LOG_DIR file holds exactly the `## ` sections log.md renders (log.md adds only a
 *   `# Session <sid>` title line on top).
 */

/** Every file under `dir`, relative to it. */
async function files (dir: string): Promise<string[]> {
  const out: string[] = []
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name)
      if (e.isDirectory()) await walk(p)
      else out.push(relative(dir, p))
    }
  }
  await walk(dir)
  return out.sort()
}

interface Expected { type: string, op: string, path: string, newPath: string | null, status: number }

/** The 20 requests of the session: creates, updates, moves and deletes, over PUT, POST /operations and DELETE. */
async function twentyRequests (ctx: Ctx): Promise<{ expected: Expected[], responses: Res[] }> {
  const expected: Expected[] = []
  const responses: Res[] = []
  const run = async (res: Promise<Res>, e: Expected): Promise<void> => {
    const r = await res
    if (r.statusCode !== e.status) throw new Error(`${e.type} ${e.op} ${e.path}: ${r.statusCode} ${r.body}`)
    responses.push(r)
    expected.push(e)
  }
  for (let i = 1; i <= 5; i++) {
    await run(ctx.put(`/a/f${i}.txt`, { content: `f${i} v1` }), { type: 'file.write', op: 'write', path: `/a/f${i}.txt`, newPath: null, status: 201 })
  }
  for (let i = 1; i <= 4; i++) {
    await run(ctx.op({ type: 'create', path: `/b/g${i}.txt`, content: `g${i} v1` }), { type: 'operation', op: 'create', path: `/b/g${i}.txt`, newPath: null, status: 200 })
  }
  for (let i = 1; i <= 3; i++) {
    await run(ctx.put(`/a/f${i}.txt`, { content: `f${i} v2` }), { type: 'file.write', op: 'write', path: `/a/f${i}.txt`, newPath: null, status: 200 })
  }
  for (let i = 1; i <= 2; i++) {
    await run(ctx.op({ type: 'update', path: `/b/g${i}.txt`, content: `g${i} v2` }), { type: 'operation', op: 'update', path: `/b/g${i}.txt`, newPath: null, status: 200 })
  }
  await run(ctx.op({ type: 'move', path: '/a/f4.txt', newPath: '/c/f4.txt' }), { type: 'operation', op: 'move', path: '/a/f4.txt', newPath: '/c/f4.txt', status: 200 })
  await run(ctx.op({ type: 'move', path: '/b/g3.txt', newPath: '/c/g3.txt' }), { type: 'operation', op: 'move', path: '/b/g3.txt', newPath: '/c/g3.txt', status: 200 })
  await run(ctx.del('/a/f5.txt'), { type: 'file.delete', op: 'delete', path: '/a/f5.txt', newPath: null, status: 200 })
  await run(ctx.del('/c/f4.txt'), { type: 'file.delete', op: 'delete', path: '/c/f4.txt', newPath: null, status: 200 })
  await run(ctx.op({ type: 'delete', path: '/b/g4.txt' }), { type: 'operation', op: 'delete', path: '/b/g4.txt', newPath: null, status: 200 })
  await run(ctx.op({ type: 'delete', path: '/c' }), { type: 'operation', op: 'delete', path: '/c', newPath: null, status: 200 })
  return { expected, responses }
}

/** The `## <time> - Backend …` sections of a Markdown log, each with its body. */
function sections (markdown: string): string[] {
  return markdown.split(/^(?=## )/m).filter(s => s.startsWith('## '))
}

/** A section's `### Type:` */
const typeOf = (section: string): string | undefined => /^### Type: (.*)$/m.exec(section)?.[1]

t.test('a session of 20 mutations: ordered activity, log.md, the failure, privacy, sessions list, pagination, CHAT_LOG_DIR mirror', async t => {
  const root = await mkdtemp(join(tmpdir(), 'wb-chatlog-'))
  t.teardown(async () => { await rm(root, { recursive: true, force: true }) })
  const dir = join(root, 'a', 'b', 'logs')
  const app = await build(t, { CHAT_LOG_DIR: dir })
  const user = await registerUser(app)
  const ctx = new Ctx(app, user, await createWorkspace(app, user))
  const sid = user.sessionId

  const { expected, responses } = await twentyRequests(ctx)
  t.equal(expected.length, 20, '20 requests, all answered as expected')
  const revisions = responses.map(r => r.json<{ revision: number }>().revision)
  t.same(revisions, Array.from({ length: 20 }, (_, i) => i + 1), 'the 20 mutations took revisions 1..20')

  // A failed update: a stale If-Match is 412 and changes nothing.
  const etag = (await ctx.read('/a/f1.txt')).etag
  const failed = await ctx.put('/a/f1.txt', { content: 'never' }, { 'if-match': '"1"' })
  isError(t, failed, 412, 'PRECONDITION_FAILED', 'stale If-Match')
  t.equal((await ctx.read('/a/f1.txt')).etag, etag, 'the failed update changed nothing')
  // A failure's entry is written after the rollback, without holding up the answer: wait for it.
  await app.activity.drain()

  await t.test('activity: auth.register, the 20 mutations in order, then the failure', async t => {
    const items = await allActivity(ctx, sid)
    t.equal(items.length, 22, '1 auth.register + 20 mutations + 1 failure')
    const [register, ...rest] = items
    t.match(register, { type: 'auth.register', status: 201, sessionId: sid, userId: user.id, workspaceId: null, revision: null, code: null }, 'first: the register that started the session')
    const mutations = rest.slice(0, 20)
    t.same(mutations.map(a => ({ type: a.type, op: a.op, path: a.path, newPath: a.newPath, status: a.status })), expected, 'type/op/path/newPath/status of each of the 20, in order')
    t.same(mutations.map(a => a.revision), revisions, 'each entry carries the revision its change took')
    for (const a of mutations) {
      t.equal(a.code, null, `${a.op} ${a.path}: no error code`)
      t.equal(a.workspaceId, ctx.ws, `${a.op} ${a.path}: workspace`)
      t.equal(a.sessionId, sid)
      t.equal(a.userId, user.id)
      t.ok(Number.isInteger(a.durationMs) && a.durationMs >= 0, `${a.op} ${a.path}: durationMs ${a.durationMs} is a non-negative integer`)
    }
    const ids = items.map(a => a.id)
    t.same(ids, [...ids].sort((x, y) => x - y), 'ids ascending: oldest first')
    const times = items.map(a => Date.parse(a.at))
    t.same(times, [...times].sort((x, y) => x - y), 'times ascending')
    t.match(items[21], { type: 'file.write', op: 'write', path: '/a/f1.txt', status: 412, code: 'PRECONDITION_FAILED', revision: null, workspaceId: ctx.ws }, 'the failed update, with its code and no revision')
  })

  await t.test('activity is paginated: limit, cursor, oldest first', async t => {
    const all = await allActivity(ctx, sid)
    const pages: ActivityRecord[][] = []
    let cursor: string | null = null
    do {
      const res = await app.inject({ url: `/v1/sessions/${sid}/activity?limit=6${cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`}`, headers: user.auth })
      t.equal(res.statusCode, 200)
      const page: ActivityPage = res.json<ActivityPage>()
      pages.push(page.items)
      cursor = page.nextCursor
    } while (cursor !== null && pages.length < 10)
    t.same(pages.map(p => p.length), [6, 6, 6, 4], '22 entries in pages of 6')
    t.same(pages.flat(), all, 'the pages put together are the whole log, in order')
    const bad = await app.inject({ url: `/v1/sessions/${sid}/activity?cursor=nope`, headers: user.auth })
    isError(t, bad, 400, 'VALIDATION_FAILED', 'a cursor that is not one')
    const tooMany = await app.inject({ url: `/v1/sessions/${sid}/activity?limit=1001`, headers: user.auth })
    isError(t, tooMany, 400, 'VALIDATION_FAILED', 'limit over 1000')
  })

  let logMd = ''
  await t.test('log.md renders the same entries as Markdown', async t => {
    const items = await allActivity(ctx, sid)
    const res = await app.inject({ url: `/v1/sessions/${sid}/log.md`, headers: user.auth })
    t.equal(res.statusCode, 200)
    t.match(res.headers['content-type'], /^text\/markdown/, 'content-type text/markdown')
    logMd = res.body
    t.ok(logMd.startsWith(`# Session ${sid}\n`), 'titled with the session')
    const secs = sections(logMd)
    t.equal(secs.length, 22, 'one section per entry')
    t.same(secs.map(s => s.split('\n')[0]), items.map(a => `## ${a.at} - Backend ${a.status >= 400 ? 'Error' : 'Activity'}`),
      'each section headed `## <ISO time> - Backend Activity` (or `Backend Error`), in order')
    for (const [i, a] of items.entries()) {
      const s = secs[i] ?? ''
      t.match(s, `\n\n### Type: ${a.type}\n`, `section ${i}: type`)
      if (a.op !== null) t.match(s, `### Operation: ${a.op}\n`, `section ${i}: operation`)
      if (a.path !== null) t.match(s, `### Path: \`${a.path}\`\n`, `section ${i}: path`)
      t.match(s, `### Duration: ${a.durationMs}ms\n`, `section ${i}: duration`)
      const details = [`status ${a.status}`, ...(a.revision === null ? [] : [`revision ${a.revision}`]), ...(a.workspaceId === null ? [] : [`workspace ${a.workspaceId}`]),
        ...(a.newPath === null ? [] : [`new path \`${a.newPath}\``])].join(', ')
      t.match(s, `### Details: ${details}`, `section ${i}: details`)
    }
    t.match(secs[21], /^### Error: PRECONDITION_FAILED: .+\n### Context: PUT \/v1\/workspaces\/[0-9a-f-]+\/files\/a\/f1\.txt\n/m, 'the failed update shows its code, message and request')
    t.notMatch(logMd, /Stack Trace/, 'no stack trace (not in development, and a 412 has none anyway)')
  })

  await t.test('another user gets 404 for this session, and sees only their own sessions', async t => {
    const other = await registerUser(app)
    for (const url of [`/v1/sessions/${sid}/activity`, `/v1/sessions/${sid}/log.md`]) {
      isError(t, await app.inject({ url, headers: other.auth }), 404, 'NOT_FOUND', `${url} as another user`)
    }
    // The auth.register entry is recorded after the response (reported race in routes/auth): wait for it.
    let list: SessionSummary[] = []
    for (let i = 0; i < 50 && list.length === 0; i++) {
      list = (await app.inject({ url: '/v1/sessions', headers: other.auth })).json<{ items: SessionSummary[] }>().items
      if (list.length === 0) await sleep(20)
    }
    t.same(list.map(s => s.id), [other.sessionId], 'their session list holds only their own session')
  })

  await t.test('X-Session-Id and an operation\'s sessionId group requests under another session', async t => {
    const tab = newSession()
    const agent = newSession()
    const a = await ctx.put('/tab.txt', { content: 'from a tab' }, { 'x-session-id': tab })
    t.equal(a.statusCode, 201)
    const b = await ctx.op({ type: 'update', path: '/tab.txt', content: 'again' }, { 'x-session-id': tab })
    t.equal(b.statusCode, 200)
    const batch = await ctx.batch([{ type: 'create', path: '/tab2.txt', content: 'y' }, { type: 'copy', path: '/tab2.txt', newPath: '/tab3.txt' }], { 'x-session-id': tab })
    t.equal(batch.statusCode, 200, batch.body)
    const c = await ctx.op({ type: 'create', path: '/agent.txt', content: 'x', sessionId: agent })
    t.equal(c.statusCode, 200)
    const tabItems = await allActivity(ctx, tab)
    t.same(tabItems.map(x => [x.type, x.op, x.path, x.status, x.sessionId]), [['file.write', 'write', '/tab.txt', 201, tab], ['operation', 'update', '/tab.txt', 200, tab], ['batch', null, null, 200, tab]], 'the tab session holds its three requests')
    t.same(tabItems[2]?.details, { operations: 2, changes: 2 }, 'the batch entry has its details')
    t.equal(tabItems[2]?.revision, 24, 'and the batch\'s last revision')
    t.same((await allActivity(ctx, agent)).map(x => [x.op, x.path, x.sessionId]), [['create', '/agent.txt', agent]], 'an operation body sessionId names the session')
    t.equal((await allActivity(ctx, sid)).length, 22, 'the token\'s session did not get them')
    const changes = await ctx.changes(20)
    t.same(changes.changes.map(ch => [ch.path, ch.sessionId]), [['/tab.txt', tab], ['/tab.txt', tab], ['/tab2.txt', tab], ['/tab2.txt', tab], ['/agent.txt', agent]], 'the changes carry the session too')

    const list = (await app.inject({ url: '/v1/sessions', headers: user.auth })).json<{ items: SessionSummary[] }>()
    t.same(list.items.map(s => s.id).sort(), [sid, tab, agent].sort(), 'GET /v1/sessions lists the three sessions')
    t.match(list.items.find(s => s.id === sid), { operations: 22, errors: 1 }, 'the main session: 22 entries, 1 error')
    t.match(list.items.find(s => s.id === tab), { operations: 3, errors: 0 })
    t.equal(list.items[0]?.id, agent, 'most recently active first')
    for (const s of list.items) t.ok(Date.parse(s.startedAt) <= Date.parse(s.lastActivityAt), `${s.id}: startedAt <= lastActivityAt`)
    const main = list.items.find(s => s.id === sid)
    const items = await allActivity(ctx, sid)
    t.equal(main?.startedAt, items[0]?.at, 'startedAt is the first entry')
    t.equal(main?.lastActivityAt, items.at(-1)?.at, 'lastActivityAt the last')
  })

  await t.test('a session id that is not a UUID never reaches the file system', async t => {
    const evil = '../../etc/x'
    const viaBody = await ctx.op({ type: 'create', path: '/evil.txt', content: 'x', sessionId: evil })
    isError(t, viaBody, 400, 'VALIDATION_FAILED', 'operation sessionId ../../etc/x')
    const viaHeader = await ctx.put('/evil.txt', { content: 'x' }, { 'x-session-id': evil })
    isError(t, viaHeader, 400, 'VALIDATION_FAILED', 'X-Session-Id ../../etc/x')
    const viaBatch = await ctx.batch([{ type: 'create', path: '/evil.txt', content: 'x', sessionId: evil }])
    isError(t, viaBatch, 400, 'VALIDATION_FAILED', 'batch operation sessionId ../../etc/x')
    const viaActivity = await app.inject({ url: `/v1/sessions/${encodeURIComponent(evil)}/activity`, headers: user.auth })
    isError(t, viaActivity, 400, 'VALIDATION_FAILED', 'GET /sessions/../../etc/x/activity')
    t.equal((await ctx.get('/evil.txt')).statusCode, 404, 'nothing was written')
  })

  // Graceful shutdown flushes the mirror; then the file holds what log.md rendered.
  await app.activity.drain()
  const tabLog = (await app.inject({ url: '/v1/sessions', headers: user.auth })).json<{ items: SessionSummary[] }>().items.map(s => s.id)
  const logs = new Map<string, string>()
  for (const s of tabLog) logs.set(s, (await app.inject({ url: `/v1/sessions/${s}/log.md`, headers: user.auth })).body)
  // The last requests go in right before the shutdown: a success and a failure (recorded after its rollback).
  const last = newSession()
  t.equal((await ctx.put('/last.txt', { content: 'last' }, { 'x-session-id': last })).statusCode, 201)
  isError(t, await ctx.op({ type: 'create', path: '/last.txt', content: 'again' }, { 'x-session-id': last }), 409, 'FILE_EXISTS', 'a failure right before the shutdown')
  await app.close()

  await t.test('after a graceful shutdown the CHAT_LOG_DIR file holds the same sections', async t => {
    const file = join(dir, `session${sid}.md`)
    const text = await readFile(file, 'utf8')
    t.same(sections(text), sections(logs.get(sid) ?? ''), 'the same sections as log.md, byte for byte')
    t.same(sections(text).slice(0, 22), sections(logMd), 'the 22 entries of the session')
    t.same(sections(text).slice(22).map(typeOf), ['operation', 'batch'], 'then the two refused requests of the session-id test')
    for (const [s, md] of logs) {
      if (s === sid) continue
      const mine = await readFile(join(dir, `session${s}.md`), 'utf8').catch(() => '')
      t.same(sections(mine), sections(md), `session${s}.md matches its log.md`)
    }
    const lastText = await readFile(join(dir, `session${last}.md`), 'utf8').catch(() => '')
    t.same(sections(lastText).map(typeOf), ['file.write', 'operation'], 'the requests made right before the shutdown are in the file too')
    t.match(lastText, '### Error: FILE_EXISTS: ', 'including the failure')
    const inside = await files(root)
    t.ok(inside.every(f => /^a\/b\/logs\/session[0-9a-f-]{36}\.md$/.test(f)), `only session<uuid>.md files under the temp root: ${inside.join(', ')}`)
    await t.rejects(stat(join(root, 'a', 'etc')), 'no a/etc made from ../../etc/x')
    await t.rejects(stat(join(root, 'a', 'b', 'etc')), 'no a/b/etc either')
  })
})

t.test('another user\'s session id in X-Session-Id is 403 FORBIDDEN, and nothing is written or recorded', async t => {
  const app = await build(t)
  const owner = await registerUser(app)
  const other = await registerUser(app)
  const mine = new Ctx(app, owner, await createWorkspace(app, owner))
  const theirs = new Ctx(app, other, await createWorkspace(app, other))
  const sid = owner.sessionId
  t.equal((await mine.put('/mine.txt', { content: 'm' })).statusCode, 201)
  isError(t, await theirs.put('/x.txt', { content: 'x' }, { 'x-session-id': sid }), 403, 'FORBIDDEN', 'their write under the owner\'s session')
  t.equal((await theirs.get('/x.txt')).statusCode, 404, 'the write did not happen')
  t.same((await allActivity(mine, sid)).map(a => [a.userId, a.type, a.path]), [[owner.id, 'auth.register', null], [owner.id, 'file.write', '/mine.txt']], 'the owner\'s session holds only the owner\'s entries')
  isError(t, await app.inject({ url: `/v1/sessions/${sid}/log.md`, headers: other.auth }), 404, 'NOT_FOUND', 'and the other user has no entries there')
  const list = (await app.inject({ url: '/v1/sessions', headers: other.auth })).json<{ items: SessionSummary[] }>()
  t.same(list.items.map(s => s.id), [other.sessionId], 'their sessions: only their own')
})

t.test('ChatLogMirror: rejects non-UUID session ids, bounds its queue, flushes on close', async t => {
  const root = await mkdtemp(join(tmpdir(), 'wb-mirror-'))
  t.teardown(async () => { await rm(root, { recursive: true, force: true }) })
  const dir = join(root, 'x', 'y')
  const mirror = new ChatLogMirror(dir, { maxQueue: 3, intervalMs: 60_000 })
  const sid = newSession()
  t.equal(mirror.append('../../etc/x', 'evil\n'), false, '../../etc/x rejected')
  t.equal(mirror.append(`${sid}/../../z`, 'evil\n'), false, 'a UUID with a path after it rejected')
  t.equal(mirror.append(sid.toUpperCase(), 'evil\n'), false, 'an upper-case UUID rejected: ids have one spelling')
  t.equal(mirror.stats.rejected, 3)
  t.equal(mirror.append(sid, 'one\n'), true)
  t.equal(mirror.append(sid, 'two\n'), true)
  t.equal(mirror.append(sid, 'three\n'), true)
  t.equal(mirror.append(sid, 'four\n'), false, 'queue full: dropped')
  t.equal(mirror.stats.dropped, 1, 'and counted')
  await t.rejects(stat(dir), 'nothing written before the flush (the interval has not passed)')
  await mirror.close()
  t.equal(await readFile(join(dir, `session${sid}.md`), 'utf8'), 'one\ntwo\nthree\n', 'close flushed the queue, in order, to one file')
  t.equal(mirror.stats.written, 3)
  t.same(await files(root), [`x/y/session${sid}.md`], 'and nothing else')
})

t.test('WebSocket connect and disconnect are recorded for the session', async t => {
  const app = await build(t)
  const base = await listen(app)
  const user = await registerUser(app)
  const client = await connect(t, base, { token: user.token })
  client.close()
  await client.closed
  const deadline = Date.now() + 5_000
  let types: string[] = []
  while (Date.now() < deadline) {
    const res = await app.inject({ url: `/v1/sessions/${user.sessionId}/activity`, headers: user.auth })
    types = res.json<{ items: Array<{ type: string }> }>().items.map(i => i.type)
    if (types.includes('ws.disconnect')) break
    await sleep(50)
  }
  t.same(types, ['auth.register', 'ws.connect', 'ws.disconnect'], 'register, connect, disconnect, in order')
  const sessions = await app.inject({ url: '/v1/sessions', headers: user.auth })
  const mine = sessions.json<{ items: Array<{ id: string, operations: number }> }>().items.find(s => s.id === user.sessionId)
  t.equal(mine?.operations, 1, 'socket connects and disconnects are not counted as operations')
})

t.test('mutations refused before they run (schema, path, content type, RPC params) are logged once each, with their code', async t => {
  const app = await build(t)
  const user = await registerUser(app)
  const ctx = new Ctx(app, user, await createWorkspace(app, user))
  const sid = newSession()
  const h = { 'x-session-id': sid }
  isError(t, await ctx.put('/a.ts', { content: 5 }, h), 400, 'VALIDATION_FAILED', 'content not a string')
  isError(t, await ctx.putUrl(`/v1/workspaces/${ctx.ws}/files/a%2Fb`, { content: 'x' }, h), 400, 'INVALID_PATH', 'an encoded /')
  isError(t, await ctx.op({ type: 'bogus', path: '/x' }, h), 400, 'VALIDATION_FAILED', 'an unknown op')
  const plain = await app.inject({ method: 'PUT', url: `/v1/workspaces/${ctx.ws}/files/p.txt`, headers: { ...user.auth, ...h, 'content-type': 'text/plain' }, payload: 'x' })
  isError(t, plain, 415, 'UNSUPPORTED_MEDIA_TYPE', 'text/plain')
  isError(t, await ctx.put('/a.ts', { content: 'x' }, { ...h, 'if-match': '"99"' }), 412, 'PRECONDITION_FAILED', 'refused by the service')

  const base = await listen(app)
  const client = await connect(t, base, { token: user.token, headers: { 'x-session-id': sid } })
  const rpc = await client.rpc('files.write', { workspaceId: ctx.ws, path: '/r.ts', content: 7 })
  t.match(rpc, { type: 'rpc.error', error: { code: 'VALIDATION_FAILED', details: { errors: [{ path: '/content', keyword: 'type' }] } } }, 'RPC errors in the REST shape')

  let entries: ActivityRecord[] = []
  for (let i = 0; i < 100 && entries.length < 6; i++) {
    entries = (await allActivity(ctx, sid)).filter(e => e.type !== 'ws.connect' && e.type !== 'ws.disconnect')
    if (entries.length < 6) await sleep(20)
  }
  t.same(entries.map(e => [e.type, e.op, e.path, e.status, e.code, e.workspaceId]), [
    ['file.write', null, '/a.ts', 400, 'VALIDATION_FAILED', ctx.ws],
    ['file.write', null, '/a%2Fb', 400, 'INVALID_PATH', ctx.ws],
    ['operation', 'bogus', '/x', 400, 'VALIDATION_FAILED', ctx.ws],
    ['file.write', null, '/p.txt', 415, 'UNSUPPORTED_MEDIA_TYPE', ctx.ws],
    ['file.write', 'write', '/a.ts', 412, 'PRECONDITION_FAILED', ctx.ws],
    ['file.write', null, '/r.ts', 400, 'VALIDATION_FAILED', ctx.ws]
  ], 'each refused mutation once, in order, with its code')
  t.equal(await ctx.revision(), 0, 'nothing was written')
})
