import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { build, createWorkspace, listen, registerUser } from '../helpers/app.js'
import { isError } from '../helpers/http.js'
import { Ctx } from '../helpers/files.js'
import { allActivity } from '../helpers/history.js'
import { connect } from '../helpers/ws.js'
import { ReadLog } from '../../src/mutations/read-log.js'

/**
 * Issue 15, item 4: ACTIVITY_LOG_READS=true records reads (file reads and directory listings with
 * the read cache's hit or miss, tree listings, history, changes, search) and WebSocket messages
 * other than ping in the session's log, in the brief's layout; off (the default) it records none
 * of them. Read entries are queued and written in batches (bounded), not on the request's path.
 */

/** The `## ` sections of a Markdown log. */
const sections = (md: string): string[] => md.split(/^(?=## )/m).filter(s => s.startsWith('## '))
const field = (section: string, name: string): string | undefined => new RegExp(`^### ${name}: (.*)$`, 'm').exec(section)?.[1]

/** The reads and WebSocket messages of the scenario, then a mutation over RPC. */
async function scenario (t: Test, ctx: Ctx, base: string): Promise<void> {
  await ctx.write('/d/a.txt', 'hello')
  for (let i = 0; i < 2; i++) t.equal((await ctx.get('/d/a.txt')).statusCode, 200, `read ${i + 1}`)
  for (let i = 0; i < 2; i++) t.equal((await ctx.get('/d')).statusCode, 200, `directory listing ${i + 1}`)
  t.equal((await ctx.treeRes({ path: '/d', depth: 1 })).statusCode, 200, 'tree')
  isError(t, await ctx.get('/nope.txt', '?x=1'), 404, 'FILE_NOT_FOUND', 'a read that fails')
  t.equal((await ctx.changesRes({ since: 0 })).statusCode, 200, 'changes')
  t.equal((await ctx.getUrl(`/v1/workspaces/${ctx.ws}/history/d/a.txt`)).statusCode, 200, 'history')
  t.equal((await ctx.send('POST', `/v1/workspaces/${ctx.ws}/search`, { query: 'hello', path: '/d' })).statusCode, 200, 'search')
  t.equal((await ctx.getUrl(`/v1/workspaces/${ctx.ws}/find?q=a`)).statusCode, 200, 'find')
  const sock = await connect(t, base, { token: ctx.user.token })
  await sock.join(ctx.ws, 0)
  await sock.request({ type: 'ping' }, ['pong'])
  t.equal((await sock.rpc('tree.list', { workspaceId: ctx.ws, path: '/' })).type, 'rpc.result')
  t.equal((await sock.rpc('files.write', { workspaceId: ctx.ws, path: '/ws.txt', content: 'x' })).type, 'rpc.result')
  await sock.request({ type: 'unsubscribe', channel: `workspace:${ctx.ws}` }, ['unsubscribed'])
  sock.close()
  await sock.closed
}

t.test('ACTIVITY_LOG_READS=true: reads, listings (cache hit and miss), tree, a failed read, and WebSocket messages in log.md and the mirror', async t => {
  const root = await mkdtemp(join(tmpdir(), 'wb-reads-'))
  t.teardown(async () => { await rm(root, { recursive: true, force: true }) })
  const app = await build(t, { ACTIVITY_LOG_READS: 'true', CHAT_LOG_DIR: root })
  t.ok(app.activity.reads instanceof ReadLog, 'the reads\' queue exists')
  const base = await listen(app)
  const user = await registerUser(app)
  const ctx = new Ctx(app, user, await createWorkspace(app, user))
  await scenario(t, ctx, base)
  await app.activity.drain()
  await app.activity.reads?.flush()

  const entries = await allActivity(ctx, user.sessionId)
  const reads = entries.filter(e => e.type === 'read')
  t.match(reads.map(e => [e.op, e.path, e.status, e.details?.cache]), [
    ['files.read', '/d/a.txt', 200, 'miss'],
    ['files.read', '/d/a.txt', 200, 'hit'],
    ['files.read', '/d', 200, 'miss'],
    ['files.read', '/d', 200, 'hit'],
    ['tree.list', '/d', 200, undefined],
    ['files.read', '/nope.txt', 404, 'miss'],
    ['changes.list', null, 200, undefined],
    ['history.list', '/d/a.txt', 200, undefined],
    ['search', '/d', 200, undefined],
    ['find', null, 200, undefined]
  ], 'each read, with the cache\'s answer where it was asked (none for /tree, changes, history, search, find: they do not use the read cache)')
  t.same(reads.slice(0, 6).map(e => e.revision), [1, 1, 1, 1, null, null], 'the revision a read answered at (its X-Revision header)')
  t.ok(reads.every(e => e.workspaceId === ctx.ws && e.context?.startsWith(`${e.op === 'search' ? 'POST' : 'GET'} /v1/workspaces/${ctx.ws}/`) === true), 'workspace and request of each')
  t.match(reads[5], { code: 'FILE_NOT_FOUND', message: /nope\.txt/, context: `GET /v1/workspaces/${ctx.ws}/files/nope.txt?x=1`, stack: null })
  const ws = entries.filter(e => e.type === 'ws')
  t.same(ws.map(e => [e.op, e.path, e.context]), [
    ['subscribe', `workspace:${ctx.ws}`, 'WS subscribe'],
    ['rpc tree.list', '/', 'RPC tree.list'],
    ['unsubscribe', `workspace:${ctx.ws}`, 'WS unsubscribe']
  ], 'subscribe, the read RPC and unsubscribe; no ping, no auth, and the write RPC only as the mutation it is')
  t.match(ws[0], { workspaceId: ctx.ws, status: 200, details: { clientId: String, since: 0 } })
  t.equal(entries.filter(e => e.type === 'file.write').length, 2, 'the REST and the RPC write, recorded by the pipeline')

  const listed = (await ctx.getUrl('/v1/sessions')).json<{ items: Array<{ id: string, operations: number, errors: number }> }>().items
  t.match(listed.find(x => x.id === user.sessionId), { operations: 3, errors: 1 }, 'the session counts the register and the two writes as operations, and the failed read as an error')
  const md = (await ctx.getUrl(`/v1/sessions/${user.sessionId}/log.md`)).body
  const secs = sections(md)
  t.equal(secs.length, entries.length, 'one section per entry')
  const readSecs = secs.filter(s => field(s, 'Type') === 'read')
  t.same(readSecs.map(s => s.split('\n').slice(1, 5 + (field(s, 'Path') === undefined ? 0 : 1))), reads.map(e => [
    '',
    '### Type: read',
    `### Operation: ${e.op ?? ''}`,
    ...(e.path === null ? [] : [`### Path: \`${e.path}\``]),
    `### Duration: ${e.durationMs}ms`
  ]), 'each read in the layout: Type, Operation, Path (when it names one), Duration')
  t.match(readSecs[0], /^## \S+ - Backend Activity\n[^]*### Details: status 200, revision 1, workspace [0-9a-f-]+, `\{"cache":"miss"\}`\n\n$/)
  t.match(readSecs[1], /### Details: status 200, revision 1, workspace [0-9a-f-]+, `\{"cache":"hit"\}`\n/)
  t.match(readSecs[5], /^## \S+ - Backend Error\n[^]*### Error: FILE_NOT_FOUND: .*nope\.txt.*\n### Context: GET \/v1\/workspaces\/[0-9a-f-]+\/files\/nope\.txt\?x=1\n### Details: status 404, workspace [0-9a-f-]+, `\{"cache":"miss"\}`\n\n$/)
  const wsSecs = secs.filter(s => field(s, 'Type') === 'ws')
  t.same(wsSecs.map(s => [field(s, 'Operation'), field(s, 'Path')]), [
    ['subscribe', `\`workspace:${ctx.ws}\``],
    ['rpc tree.list', '`/`'],
    ['unsubscribe', `\`workspace:${ctx.ws}\``]
  ], 'the WebSocket messages in the layout')

  await app.close()
  const mirrored = await readFile(join(root, `session${user.sessionId}.md`), 'utf8')
  t.same(sections(mirrored).sort(), [...secs].sort(), 'the CHAT_LOG_DIR file holds the same sections (reads are written in batches, so in their own order)')
})

t.test('ACTIVITY_LOG_READS off (the default): no read and no WebSocket message is recorded', async t => {
  const app = await build(t)
  t.equal(app.activity.reads, undefined, 'no reads\' queue')
  const base = await listen(app)
  const user = await registerUser(app)
  const ctx = new Ctx(app, user, await createWorkspace(app, user))
  await scenario(t, ctx, base)
  await app.activity.drain()
  const entries = await allActivity(ctx, user.sessionId)
  t.same(entries.map(e => e.type), ['auth.register', 'file.write', 'ws.connect', 'file.write', 'ws.disconnect'], 'only the mutations, the login and the socket')
  const md = (await ctx.getUrl(`/v1/sessions/${user.sessionId}/log.md`)).body
  t.notMatch(md, /### Type: (read|ws)\n/, 'and none in log.md')
})

t.test('the reads\' queue is bounded: at the bound an entry is queued, past it dropped and counted', async t => {
  const app = await build(t)
  const user = await registerUser(app)
  const log = new ReadLog(app.db, { maxQueue: 3, intervalMs: 60_000, maxBatch: 2 })
  const entry = (path: string): Parameters<ReadLog['push']>[0] => ({ sessionId: user.sessionId, userId: user.id, type: 'read', op: 'files.read', path, status: 200, durationMs: 1 })
  t.same(['/1', '/2', '/3', '/4'].map(p => log.push(entry(p))), [true, true, true, false], 'three queued, the fourth refused')
  t.same(log.stats, { written: 0, dropped: 1 }, 'nothing written yet (no insert on the request\'s path); one dropped')
  await log.close()
  t.same(log.stats, { written: 3, dropped: 1 }, 'written on close, in batches of two')
  const ctx = new Ctx(app, user, '')
  t.same((await allActivity(ctx, user.sessionId)).filter(e => e.type === 'read').map(e => e.path), ['/1', '/2', '/3'])
})
