import t from 'tap'
import { request as httpRequest } from 'node:http'
import { build, createTestDatabase, createWorkspace, dbClient, listen, registerUser, sleep } from '../helpers/app.js'
import { Ctx, setup } from '../helpers/files.js'
import { expectStatus, isError } from '../helpers/http.js'
import { connect } from '../helpers/ws.js'
import { diff, exportToDisk, insertAll, lineKeys, rg, searchApi, type SearchResult } from '../helpers/search.js'

/**
 * Issue 13's limits and doors: past revisions, runaway patterns and the time budget, invalid
 * regexes, access, NDJSON streaming and its cancellation, and the RPC methods.
 */

const searchUrl = (c: Ctx): string => `/v1/workspaces/${c.ws}/search`

t.test('a search at a past revision answers that revision\'s files', async t => {
  const c = await setup(t)
  const before = new Map<string, string>()
  for (let i = 0; i < 40; i++) before.set(`/src/m${String(i).padStart(2, '0')}.ts`, `export const value${i} = 'needle ${i}'\n// needle again\n`)
  before.set('/docs/readme.md', 'no needle here? yes, a needle\n')
  await c.batch([...before].map(([path, content]) => ({ type: 'create', path, content })))
  const old = await c.revision()

  // Change everything a tree can go through: update, delete, move a directory, create, copy.
  await c.write('/src/m00.ts', 'nothing to find\n')
  await c.del('/src/m01.ts')
  await c.op({ type: 'move', path: '/src', newPath: '/lib' })
  await c.write('/new.ts', 'a fresh needle\n')
  await c.op({ type: 'copy', path: '/docs', newPath: '/docs2' })
  await c.write('/docs/readme.md', 'rewritten without it\n')
  const head = await c.revision()

  const now = new Map<string, string>()
  for (const [path, content] of before) if (path !== '/src/m00.ts' && path !== '/src/m01.ts' && path.startsWith('/src/')) now.set(path.replace('/src/', '/lib/'), content)
  now.set('/lib/m00.ts', 'nothing to find\n')
  now.set('/new.ts', 'a fresh needle\n')
  now.set('/docs2/readme.md', before.get('/docs/readme.md') ?? '')
  now.set('/docs/readme.md', 'rewritten without it\n')

  const atOld = await searchApi(c, { query: 'needle', revision: old })
  t.equal(atOld.revision, old, 'answered at the revision asked for')
  const oldDir = exportToDisk(t, before)
  t.same(diff(lineKeys(atOld), (await rg(oldDir, ['-F', '-e', 'needle'])).matches), { onlyOurs: [], onlyRg: [] }, 'the old revision: rg on its files')
  const atHead = await searchApi(c, { query: 'needle' })
  t.equal(atHead.revision, head)
  const headDir = exportToDisk(t, now)
  t.same(diff(lineKeys(atHead), (await rg(headDir, ['-F', '-e', 'needle'])).matches), { onlyOurs: [], onlyRg: [] }, 'the head: rg on its files')
  const middle = await searchApi(c, { query: 'needle', revision: old + 2, path: '/src' })
  t.ok(middle.matches.every(m => m.path.startsWith('/src/')) && middle.matches.length > 0, 'a subtree at a revision where it still existed')
  t.notOk(middle.matches.some(m => m.path === '/src/m00.ts' || m.path === '/src/m01.ts'), 'after the update and the delete')

  isError(t, await c.send('POST', searchUrl(c), { query: 'x', revision: head + 1 }), 400, 'VALIDATION_FAILED', 'a revision ahead of the head')
})

t.test('runaway patterns, the time budget, invalid regexes', async t => {
  const c = await setup(t, { SEARCH_TIMEOUT_MS: '3000' })
  // A line that sends backtracking engines into exponential time on (a+)+$ and friends.
  await c.write('/evil.txt', 'a'.repeat(50_000) + 'b\n' + ('x'.repeat(30) + 'y').repeat(1000) + '\n')
  for (const query of ['(a+)+$', '(a|aa)+$', '(x+x+)+y$', '^(a|a?)+$', '(.*a){20}$']) {
    const t0 = performance.now()
    const r = await searchApi(c, { query, isRegex: true })
    const ms = performance.now() - t0
    t.equal(r.timedOut, false, `${query}: answered in ${Math.round(ms)} ms, within the budget`)
    t.ok(ms < 3000, `${query}: under SEARCH_TIMEOUT_MS`)
  }

  // A long literal against a text made to cost a naive search its length times the literal's.
  await c.write('/many-a.txt', 'a'.repeat(1024 * 1024 - 2) + '\n')
  for (const [query, caseSensitive] of [['a'.repeat(999) + 'b', true], ['A'.repeat(999) + 'b', false], ['b' + 'a'.repeat(999), true]] as const) {
    const t0 = performance.now()
    const r = await searchApi(c, { query, caseSensitive, path: '/many-a.txt' })
    const ms = performance.now() - t0
    // within the budget (checked between files), give or take the one file being read
    t.ok(ms < 6000 && r.matches.length === 0, `a ${query.length}-character literal over 1 MiB of 'a': ${Math.round(ms)} ms${r.timedOut ? ', timed out' : ''}`)
  }
  const found = await searchApi(c, { query: 'a'.repeat(100), path: '/many-a.txt', maxResults: 5 })
  t.same(found.matches.map(m => m.column), [1, 101, 201, 301, 401], 'a long literal still finds its matches')

  const invalid: Array<[string, number]> = [['(abc', 0], ['ab)c', 2], ['a[b-', 1], ['x{2,1}', 1], ['foo\\q', 3], ['a**', 1], ['(?=x)', 0]]
  for (const [query, position] of invalid) {
    const res = await c.send('POST', searchUrl(c), { query, isRegex: true })
    const body = isError(t, res, 400, 'INVALID_PATTERN', `${query}: 400 INVALID_PATTERN`)
    t.equal(body.details?.position, position, `${query}: position ${position} (${body.message})`)
  }
  isError(t, await c.send('POST', searchUrl(c), { query: 'a\\nb', isRegex: true }), 400, 'INVALID_PATTERN', 'a newline in a regex, as rg refuses it')
  isError(t, await c.send('POST', searchUrl(c), { query: 'a\nb' }), 400, 'INVALID_PATTERN', 'a newline in a literal')
  t.equal((await searchApi(c, { query: '(abc' })).matches.length, 0, 'a literal is never a regex')
})

t.test('SEARCH_TIMEOUT_MS: past it the search answers what it found, truncated and timedOut', async t => {
  const c = await setup(t, { SEARCH_TIMEOUT_MS: '1' })
  await c.write('/a.txt', 'needle\n')
  const r = await searchApi(c, { query: 'needle' })
  t.equal(r.timedOut, true, 'timedOut')
  t.equal(r.truncated, true, 'truncated')
})

t.test('access: a viewer can search and find, a non-member gets 404', async t => {
  const c = await setup(t)
  await c.write('/a.txt', 'hello world\n')
  const viewer = await registerUser(c.app)
  const stranger = await registerUser(c.app)
  expectStatus(await c.send('PUT', `/v1/workspaces/${c.ws}/members`, { email: viewer.email, role: 'viewer' }), [200, 201], 'add viewer')
  const asViewer = new Ctx(c.app, viewer, c.ws)
  const found = await searchApi(asViewer, { query: 'hello' })
  t.same(found.matches.map(m => [m.path, m.line, m.column, m.length, m.preview]), [['/a.txt', 1, 1, 5, 'hello world']], 'a viewer searches')
  expectStatus(await asViewer.getUrl(`/v1/workspaces/${c.ws}/find?q=a`), 200, 'a viewer finds')
  const asStranger = new Ctx(c.app, stranger, c.ws)
  isError(t, await asStranger.send('POST', searchUrl(c), { query: 'hello' }), 404, 'WORKSPACE_NOT_FOUND', 'a non-member: 404')
  isError(t, await asStranger.send('POST', searchUrl(c), { query: '(', isRegex: true }), 404, 'WORKSPACE_NOT_FOUND', 'a non-member learns nothing of the pattern either')
  isError(t, await asStranger.getUrl(`/v1/workspaces/${c.ws}/find?q=a`), 404, 'WORKSPACE_NOT_FOUND', 'find: 404')
  isError(t, await c.app.inject({ method: 'POST', url: searchUrl(c), payload: { query: 'x' } }), 401, 'UNAUTHENTICATED', 'no token: 401')
})

t.test('NDJSON: matches one per line, then the summary; the same answer as JSON', async t => {
  const c = await setup(t)
  const files = new Map<string, string>()
  for (let i = 0; i < 50; i++) files.set(`/f${String(i).padStart(2, '0')}.txt`, `line one\nneedle ${i}\nneedle ${i} again needle\n`)
  await insertAll(c, files)
  const json = await searchApi(c, { query: 'needle', contextLines: 1 })
  const res = await c.send('POST', searchUrl(c), { query: 'needle', contextLines: 1 }, { accept: 'application/x-ndjson' })
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^application\/x-ndjson/)
  const lines = res.body.trim().split('\n').map(l => JSON.parse(l) as Record<string, unknown>)
  const summary = lines.at(-1)
  t.match(summary, { type: 'summary', revision: json.revision, filesSearched: 50, filesMatched: 50, truncated: false, timedOut: false })
  const matches = lines.slice(0, -1).map(({ type, ...m }) => { t.equal(type, 'match'); return m })
  t.same(matches, json.matches, 'the matches of the JSON answer, in order')
  const bad = await c.send('POST', searchUrl(c), { query: '(', isRegex: true }, { accept: 'application/x-ndjson' })
  isError(t, bad, 400, 'INVALID_PATTERN', 'an invalid pattern is a plain 400 before anything streams')
})

t.test('a streamed search cancelled by the client stops using the database', async t => {
  // The ended-sessions read (twice a second) would count as pool acquisitions: slowed out of the way.
  const c = await setup(t, { SEARCH_TIMEOUT_MS: '60000', SESSION_END_POLL_MS: '60000' })
  // Thousands of lines that all match, with context: far more than the client will read.
  const files = new Map<string, string>()
  const line = (i: number): string => `const value${i} = compute(${i}) // some text to make the line longer than it needs to be\n`
  for (let f = 0; f < 400; f++) files.set(`/d${f % 10}/f${f}.ts`, Array.from({ length: 200 }, (_, i) => line(i)).join(''))
  await insertAll(c, files)
  const base = await listen(c.app)
  const admin = await dbClient(t, c.app.config.DATABASE_URL ?? '')
  const pool = (c.app as unknown as { pg: { pool: { on: (e: string, f: () => void) => void, totalCount: number, idleCount: number } } }).pg.pool
  let acquired = 0
  pool.on('acquire', () => { acquired++ })

  const url = new URL(`${base}/v1/workspaces/${c.ws}/search`)
  const body = JSON.stringify({ query: 'compute\\(\\d+\\)', isRegex: true, maxResults: 10_000, contextLines: 10 })
  const received = await new Promise<number>((resolve, reject) => {
    const req = httpRequest(url, { method: 'POST', headers: { ...c.user.auth, 'content-type': 'application/json', accept: 'application/x-ndjson' } }, res => {
      let bytes = 0
      res.on('data', (chunk: Buffer) => {
        bytes += chunk.length
        // the first lines are there: stop reading, and close the request
        if (bytes > 10_000) { res.pause(); req.destroy(); resolve(bytes) }
      })
      res.on('error', () => {})
    })
    req.on('error', err => { if ((err as NodeJS.ErrnoException).code !== 'ECONNRESET') reject(err) })
    req.end(body)
  })
  t.ok(received > 10_000, 'matches were streaming')
  await sleep(300)
  const after = acquired
  const activity = async (): Promise<Array<{ state: string, query: string }>> => (await admin.query<{ state: string, query: string }>(
    "SELECT state, query FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'workbench-api' AND state <> 'idle'")).rows
  await sleep(1000)
  t.same(await activity(), [], 'no statement of the app runs or holds a transaction')
  t.equal(acquired, after, 'no query started since the client closed')
  t.equal(pool.totalCount - pool.idleCount, 0, 'every connection is back in the pool')

  // Uncancelled, the same search goes on to its end: the cancellation is what stopped it.
  const full = await searchApi(c, { query: 'compute\\(\\d+\\)', isRegex: true, maxResults: 10_000, contextLines: 10 })
  t.equal(full.matches.length, 10_000)
  t.ok(acquired > after, 'a full search does query')

  // The service itself: once its signal aborts, the search ends at the next match and reads nothing more.
  const controller = new AbortController()
  const actor = { userId: c.user.id, sessionId: c.user.sessionId, permissions: ['file.read'] }
  const run = await c.app.searchService.open(actor, { workspaceId: c.ws, query: 'compute\\(\\d+\\)', isRegex: true, maxResults: 10_000 }, { signal: controller.signal })
  const first = await run.events.next()
  t.equal(first.done, false, 'a first match')
  controller.abort()
  const atAbort = acquired
  const last = await run.events.next()
  t.equal(last.done, true, 'the next step ends the search')
  t.match(last.value, { truncated: false, timedOut: false }, 'with its summary')
  await sleep(300)
  t.equal(acquired, atAbort, 'no query after the abort')
})

t.test('RPC search and find answer as the routes do', async t => {
  const app = await build(t)
  const base = await listen(app)
  const u = await registerUser(app)
  const ws = await createWorkspace(app, u)
  const c = new Ctx(app, u, ws)
  await c.write('/src/app.ts', 'export function main () {}\n')
  await c.write('/src/lib/util.ts', 'export const main = 1\n')
  const sock = await connect(t, base, { token: u.token })
  const viaRpc = await sock.rpc('search', { workspaceId: ws, query: 'main', wholeWord: true })
  const viaRest = await searchApi(c, { query: 'main', wholeWord: true })
  t.equal(viaRpc.type, 'rpc.result')
  const result = viaRpc.result as SearchResult
  t.same({ ...result, elapsedMs: 0 }, { ...viaRest, elapsedMs: 0 }, 'the REST answer')
  const bad = await sock.rpc('search', { workspaceId: ws, query: '(', isRegex: true })
  t.match(bad, { type: 'rpc.error', error: { code: 'INVALID_PATTERN', details: { position: 0 } } })
  const find = await sock.rpc('find', { workspaceId: ws, q: 'app' })
  t.match(find, { type: 'rpc.result', result: { results: [{ path: '/src/app.ts' }] } })
  const wrong = await sock.rpc('search', { workspaceId: ws })
  t.match(wrong, { type: 'rpc.error', error: { code: 'VALIDATION_FAILED' } })
})

t.test('a parallel plan for the trigram prefilter: the search answers, as rg does', async t => {
  // On a large database PostgreSQL may read the blobs with parallel workers; the prefilter's
  // condition, `search_text(content)`, then runs in them. Costs that make every plan parallel
  // stand in for that size here (set for the database, so every connection of the app has them).
  const url = await createTestDatabase(t)
  const admin = await dbClient(t, url)
  const name = new URL(url).pathname.slice(1)
  for (const setting of ['parallel_setup_cost', 'parallel_tuple_cost', 'min_parallel_table_scan_size', 'min_parallel_index_scan_size']) {
    await admin.query(`ALTER DATABASE ${name} SET ${setting} = 0`)
  }
  const c = await setup(t, { DATABASE_URL: url })
  const files = new Map<string, string>()
  // More contents than the prefilter's few (FEW_CONTENTS) and more bytes than it reads unaided.
  for (let i = 0; i < 300; i++) files.set(`/p/f${String(i).padStart(3, '0')}.txt`, `file ${i}\n${'filler line without it\n'.repeat(400)}${i % 7 === 0 ? 'a needle here\n' : ''}`)
  await insertAll(c, files)
  // (a new connection: the settings apply to sessions started after them)
  const plan = await dbClient(t, url)
  const { rows } = await plan.query<{ 'QUERY PLAN': string }>('EXPLAIN SELECT sha256 FROM blobs WHERE size > 0')
  t.match(rows.map(r => r['QUERY PLAN']).join('\n'), /Parallel/, 'a scan of the blobs is planned in parallel here')
  const r = await searchApi(c, { query: 'needle' })
  const dir = exportToDisk(t, files)
  t.same(diff(lineKeys(r), (await rg(dir, ['-F', '-e', 'needle'])).matches), { onlyOurs: [], onlyRg: [] }, 'the same lines as rg')
  t.equal(r.matches.length, [...files.values()].filter(text => text.includes('needle')).length, 'one match per file that has it')
})
