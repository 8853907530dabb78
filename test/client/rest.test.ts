import t from 'tap'
import { ApiError, NOT_METHODS, ROUTES, WorkbenchClient, isMeta, type RouteName } from '../../client/src/index.js'
import { build, listen, PASSWORD } from '../helpers/app.js'

/**
 * Every REST route through the SDK against the real server, and the SDK's route table against
 * the server's OpenAPI document: a route the server adds, removes or renames fails here.
 */

const email = (): string => `sdk-${Math.random().toString(36).slice(2)}@example.com`

/** A fetch that records which route of the table each request went to. */
function recordingFetch (called: Set<RouteName>, hook?: (url: URL, init: RequestInit | undefined) => Promise<Response> | undefined): typeof fetch {
  const patterns = (Object.entries(ROUTES) as Array<[RouteName, readonly [string, string]]>).map(([name, [method, template]]) => {
    const source = template.replace(/[.]/g, '\\.').replace('{path}', '.*').replace(/\{[^}]+\}/g, '[^/]+')
    return { name, method, re: new RegExp(`^${source}$`), root: template.endsWith('/{path}') ? new RegExp(`^${source.slice(0, -3)}$`) : null }
  })
  return async (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input))
    const method = init?.method ?? 'GET'
    const route = patterns.find(p => p.method === method && (p.re.test(url.pathname) || p.root?.test(url.pathname) === true))
    if (route !== undefined) called.add(route.name)
    return await (hook?.(url, init) ?? fetch(input, init))
  }
}

t.test('the SDK route table is the OpenAPI document\'s, both ways', async t => {
  const app = await build(t)
  const res = await app.inject({ method: 'GET', url: '/docs/json' })
  const doc = res.json<{ paths: Record<string, Record<string, unknown>> }>()
  const documented = new Set<string>()
  for (const [path, operations] of Object.entries(doc.paths)) {
    for (const method of Object.keys(operations)) documented.add(`${method.toUpperCase()} ${path}`)
  }
  const sdk = new Set<string>([
    ...Object.values(ROUTES).map(([method, path]) => `${method} ${path}`),
    ...NOT_METHODS.map(([method, path]) => `${method} ${path}`)
  ])
  t.same([...documented].filter(r => !sdk.has(r)).sort(), [], 'every documented route has an SDK method (or is listed in NOT_METHODS)')
  t.same([...sdk].filter(r => !documented.has(r)).sort(), [], 'every SDK route is documented')
})

t.test('every method against the real server', async t => {
  const app = await build(t)
  const base = await listen(app)
  const called = new Set<RouteName>()
  const client = new WorkbenchClient({ baseUrl: base, fetch: recordingFetch(called) })

  t.same(await client.health(), { status: 'ok' })
  t.same(await client.ready(), { status: 'ready' })
  const owner = email()
  const registered = await client.auth.register({ email: owner, password: PASSWORD })
  t.equal(registered.user.email, owner)
  t.equal(client.tokens?.sessionId, registered.sessionId)
  t.ok((client.tokens?.expiresAt ?? 0) > Date.now() + 60_000, 'expiresAt from expiresIn')
  t.match(await client.me(), { id: registered.user.id, email: owner, permissions: ['file.read', 'file.write'] })
  const loggedIn = new WorkbenchClient({ baseUrl: base, fetch: recordingFetch(called) })
  t.equal((await loggedIn.auth.login({ email: owner, password: PASSWORD })).user.id, registered.user.id)

  const ws = await client.workspaces.create('sdk')
  t.match(ws, { name: 'sdk', role: 'owner', revision: 0 })
  t.same((await client.workspaces.list()).map(w => w.id), [ws.id])
  t.equal((await client.workspaces.get(ws.id)).id, ws.id)

  const other = new WorkbenchClient({ baseUrl: base, fetch: recordingFetch(called) })
  const otherEmail = email()
  const otherUser = (await other.auth.register({ email: otherEmail, password: PASSWORD })).user
  t.match(await client.members.put(ws.id, { email: otherEmail, role: 'viewer' }), { userId: otherUser.id, role: 'viewer' })
  t.same((await client.members.list(ws.id)).map(m => m.role).sort(), ['owner', 'viewer'])

  // files
  const written = await client.files.write(ws.id, '/src/café.ts', { content: 'a\nb\nc\n' })
  t.match(written, { file: { path: '/src/café.ts', kind: 'file', version: 1 }, revision: 1 })
  const read = await client.files.read(ws.id, '/src/café.ts')
  t.match(read, { content: 'a\nb\nc\n', encoding: 'utf8', readRevision: 1, httpEtag: '"1"' })
  t.equal(await client.files.read(ws.id, '/src/café.ts', { ifNoneMatch: read.httpEtag }), null, '304 is null')
  t.match(await client.files.read(ws.id, '/src/café.ts', { lines: '2-3' }), { content: 'b\nc\n', lines: { start: 2, end: 3 }, totalLines: 3 })
  const raw = await client.files.readRaw(ws.id, '/src/café.ts', { lines: '-1' })
  t.equal(new TextDecoder().decode(raw.bytes), 'c\n')
  t.match(raw, { lines: { start: 3, end: 3 }, totalLines: 3, readRevision: 1 })
  t.match(await client.files.read(ws.id, '/'), { path: '/', kind: 'directory', children: [{ path: '/src' }] }, 'the root')
  t.match(await client.files.read(ws.id, '/src/café.ts', { revision: 1 }), { content: 'a\nb\nc\n' })

  const applied = await client.operations.apply(ws.id, { type: 'create', path: '/b.txt', content: 'x' })
  t.ok(isMeta(applied.data) && applied.data.path === '/b.txt')
  const edited = await client.operations.edit(ws.id, '/src/café.ts', [{ oldText: 'b', newText: 'B' }], { dryRun: true })
  t.match(edited, { dryRun: true, diff: /-b\n\+B/ })
  const editedForReal = await client.operations.edit(ws.id, '/src/café.ts', [{ oldText: 'b', newText: 'B' }], { ifMatch: '1' })
  t.equal(editedForReal.revision, 3)
  const batch = await client.operations.batch(ws.id, [{ type: 'mkdir', path: '/lib' }, { type: 'move', path: '/b.txt', newPath: '/lib/b.txt' }])
  t.equal(batch.revision, 5)
  t.same((await client.files.tree(ws.id, { path: '/', depth: 0 })).entries.map(e => e.path), ['/lib', '/lib/b.txt', '/src', '/src/café.ts'])
  const all = await client.files.treeAll(ws.id)
  t.equal(all.revision, 5)
  t.equal(all.entries.length, 4)
  const changes = await client.files.changes(ws.id, { since: 0 })
  t.same(changes.changes.map(c => c.op), ['create', 'create', 'update', 'mkdir', 'move'])
  t.same((await client.files.history(ws.id, '/lib/b.txt')).items.map(c => c.op), ['move', 'create'])
  t.match(await client.files.history(ws.id, '/'), { items: Array })
  t.match(await client.files.delete(ws.id, '/lib'), { deleted: 2, revision: 6 })
  t.match(await client.revert(ws.id, { toRevision: 5, dryRun: true }), { changes: [{ op: 'mkdir' }, { op: 'create' }] })
  t.match(await client.search(ws.id, { query: 'B' }), { revision: 6, matches: [{ path: '/src/café.ts', line: 2, column: 1 }], filesMatched: 1 })
  t.match(await client.find(ws.id, { q: 'caf' }), { revision: 6, results: [{ path: '/src/café.ts' }] })

  // snapshots and forks
  t.match(await client.snapshots.create(ws.id, { name: 'v6' }), { name: 'v6', revision: 6 })
  t.same((await client.snapshots.list(ws.id)).map(s => s.name), ['v6'])
  t.match(await client.snapshots.get(ws.id, 'v6'), { name: 'v6', revision: 6 })
  await client.snapshots.delete(ws.id, 'v6')
  const forked = await client.workspaces.fork(ws.id, { name: 'sdk fork', revision: 5 })
  t.match(forked, { name: 'sdk fork', role: 'owner', revision: 1, forkedFrom: { workspaceId: ws.id, revision: 5 } })
  t.same((await client.files.treeAll(forked.id)).entries.map(e => e.path), ['/lib', '/lib/b.txt', '/src', '/src/café.ts'])

  // sessions
  const sessions = await client.sessions.list()
  t.ok(sessions.some(s => s.id === registered.sessionId))
  t.ok((await client.sessions.activity(registered.sessionId, { limit: 5 })).items.length > 0)
  t.match(await client.sessions.log(registered.sessionId), /^## /m)

  // errors
  const missing = await client.files.read(ws.id, '/nope').catch((e: unknown) => e)
  t.ok(missing instanceof ApiError)
  t.match(missing, { status: 404, code: 'FILE_NOT_FOUND', message: /nope/ })
  const stale = await client.files.write(ws.id, '/src/café.ts', { content: 'z' }, { ifMatch: '1' }).catch((e: unknown) => e)
  t.match(stale, { status: 412, code: 'PRECONDITION_FAILED', details: { current: { etag: '3' } } })
  t.match(await client.stats().catch((e: unknown) => e), { status: 403, code: 'FORBIDDEN' })
  t.match(await other.files.write(ws.id, '/v.txt', { content: 'v' }).catch((e: unknown) => e), { status: 403, code: 'FORBIDDEN' })

  await client.members.remove(ws.id, otherUser.id)
  t.same((await client.members.list(ws.id)).length, 1)
  const refreshed = await client.auth.refresh()
  t.equal(client.tokens?.accessToken, refreshed.accessToken)
  t.equal(client.refreshCount, 1)
  await client.workspaces.delete(ws.id)
  t.match(await client.workspaces.get(ws.id).catch((e: unknown) => e), { status: 404, code: 'WORKSPACE_NOT_FOUND' })
  await loggedIn.auth.logout()
  t.equal(loggedIn.tokens, null)
  t.match(await loggedIn.me().catch((e: unknown) => e), { status: 401, code: 'UNAUTHENTICATED' })

  const uncalled = (Object.keys(ROUTES) as RouteName[]).filter(name => !called.has(name))
  t.same(uncalled, [], 'every route of the table was called by its method')
})

t.test('a write whose answer is lost is retried with its idempotency key and applied once', async t => {
  const app = await build(t)
  const base = await listen(app)
  let lose = 0
  const called = new Set<RouteName>()
  const client = new WorkbenchClient({
    baseUrl: base,
    retryDelayMs: 10,
    fetch: recordingFetch(called, (url, init) => {
      if (lose === 0 || init?.method !== 'PUT') return undefined
      lose--
      // The server applies it; the answer never arrives.
      return fetch(url, init).then(() => { throw new TypeError('fetch failed') })
    })
  })
  await client.auth.register({ email: email(), password: PASSWORD })
  const ws = await client.workspaces.create('retry')
  lose = 2
  const written = await client.files.write(ws.id, '/a.txt', { content: 'once' })
  t.equal(written.revision, 1, 'the third attempt got the first attempt\'s answer')
  t.equal(lose, 0)
  const feed = await client.files.changes(ws.id)
  t.equal(feed.head, 1, 'applied once')
  t.ok(client.isOwnOp(feed.changes[0]?.opId), 'the change\'s opId is the SDK\'s key: its own')

  // A refused request is not retried; one that got no answer and is not safe to repeat is not either.
  const failing = new WorkbenchClient({ baseUrl: 'http://127.0.0.1:9', retries: 1, retryDelayMs: 1 })
  t.match(await failing.auth.login({ email: 'a@example.com', password: PASSWORD }).catch((e: unknown) => e), { status: 0, code: 'NETWORK_ERROR', isNetworkError: true })
})
