import fc from 'fast-check'
import t from 'tap'
import { buildApp } from '../../src/app.js'
import { createTestDatabase, createWorkspace, dbClient, listen, PASSWORD, registerUser, TEST_SECRET, testConfig } from '../helpers/app.js'
import { expectStatus, request } from '../helpers/http.js'
import { accessClaims, nowSeconds, signJwt } from '../helpers/jwt.js'
import { Draw, FUZZ_RUNS, FUZZ_SEED, databaseDigest, describe, errorShapeProblem, malformedHttp, routesOf, sendHttp, sendRaw, uuid, type Case, type OpenApiDocument, type Route, type World } from '../helpers/fuzz.js'
import { isOpenRoute, makeCase } from '../helpers/fuzz-cases.js'

/**
 * The property-based suite of issue 10 ("Hardening"): for every route of the OpenAPI document
 * (/docs/json), FUZZ_RUNS generated malformed requests (fast-check, seed FUZZ_SEED), each of them
 * invalid by the contract. Each must be answered 4xx in the contract's error shape, never 5xx and
 * never 2xx, and the database must be as it was: the workspace, its files and history, members,
 * users and refresh tokens. Most go through app.inject; some (and every path with `.`/`..`
 * segments) over real HTTP. Replay a run with FUZZ_SEED=<seed>; FUZZ_RUNS scales it.
 */

interface Reply { statusCode: number, headers: Record<string, unknown>, body: string }
interface Failure { problem: string, c: Case, reply: Reply }

t.test('malformed requests to every route of the OpenAPI document: 4xx in the error shape, never 5xx, nothing changed', async t => {
  const databaseUrl = await createTestDatabase(t)
  // Small files, so that boundary sizes are cheap; sessions unbounded, so that the bound is not what answers.
  // Warnings and errors are collected, not printed: a refused request must log no error either.
  const logs: Array<{ level: number, msg?: string, err?: { message?: string } }> = []
  const stream = { write: (line: string) => { logs.push(JSON.parse(line) as { level: number }) } }
  const app = await buildApp(testConfig({ DATABASE_URL: databaseUrl, MAX_FILE_BYTES: '65536', MAX_NEW_SESSIONS_PER_WINDOW: '1000000' }), { logger: { level: 'warn', stream } })
  t.teardown(() => app.close())
  await app.ready()
  // Refused mutations are recorded after the answer, and a failure there is silent: watch for it.
  const activityErrors: string[] = []
  const record = app.activity.record.bind(app.activity)
  app.activity.record = async (entry, onError) => {
    await record(entry, err => {
      activityErrors.push(`${String(err)} recording ${JSON.stringify(entry).slice(0, 300)}`)
      onError?.(err)
    })
  }
  const base = await listen(app)
  const db = await dbClient(t, databaseUrl)

  const owner = await registerUser(app)
  const member = await registerUser(app)
  const stranger = await registerUser(app)
  const keeper = await registerUser(app)
  const ws = await createWorkspace(app, owner, 'fuzz target')
  const strangerWs = await createWorkspace(app, stranger, 'elsewhere')
  expectStatus(await request(app, 'PUT', `/v1/workspaces/${ws}/members`, { token: owner.token, payload: { email: member.email, role: 'editor' } }), 200, 'member')
  const files = ['/a.txt', '/b.txt', '/d/c.md', '/d/e/f.txt', '/bin.dat']
  for (const path of files) {
    const payload = path === '/bin.dat' ? { content: 'AAEC/w==', encoding: 'base64' } : { content: `content of ${path}`, metadata: { k: path } }
    expectStatus(await request(app, 'PUT', `/v1/workspaces/${ws}/files${path}`, { token: owner.token, payload }), 201, `write ${path}`)
  }
  expectStatus(await request(app, 'POST', `/v1/workspaces/${ws}/operations`, { token: owner.token, payload: { type: 'mkdir', path: '/empty' } }), 200, 'mkdir')
  const head = expectStatus<{ revision: number }>(await request(app, 'GET', `/v1/workspaces/${ws}`, { token: owner.token }), 200, 'workspace').revision

  const sign = (claims: Record<string, unknown>): string => signJwt(claims, { alg: 'HS256', secret: TEST_SECRET })
  const world: World = {
    owner: { id: owner.id, email: owner.email, token: owner.token, sessionId: owner.sessionId },
    member: { id: member.id, email: member.email },
    stranger: { id: stranger.id, sessionId: stranger.sessionId, ws: strangerWs },
    refreshToken: keeper.refreshToken,
    password: PASSWORD,
    ws,
    head,
    files,
    dirs: ['/d', '/d/e', '/empty'],
    badTokens: {
      expired: sign(accessClaims(owner.id, owner.sessionId, { iat: nowSeconds() - 3600, exp: nowSeconds() - 1800 })),
      'alg none': signJwt(accessClaims(owner.id, owner.sessionId), { alg: 'none' }),
      'wrong secret': signJwt(accessClaims(owner.id, owner.sessionId), { alg: 'HS256', secret: 'another-secret-of-at-least-thirty-two-chars' }),
      HS512: signJwt(accessClaims(owner.id, owner.sessionId), { alg: 'HS512', secret: TEST_SECRET }),
      'sub not a uuid': sign(accessClaims('x', owner.sessionId)),
      'sub a number': sign(accessClaims(owner.id, owner.sessionId, { sub: 42 })),
      'no sub': sign(accessClaims(owner.id, owner.sessionId, { sub: undefined })),
      'sub with NUL': sign(accessClaims(`${owner.id}\u0000`, owner.sessionId)),
      "another user's sid": sign(accessClaims(owner.id, stranger.sessionId)),
      'not yet valid': sign(accessClaims(owner.id, owner.sessionId, { nbf: nowSeconds() + 3600 }))
    },
    ghostToken: sign(accessClaims(uuid(), uuid()))
  }

  /** Everything a refused request must leave as it was. */
  const snapshot = async (): Promise<string> => await databaseDigest(db)

  async function send (c: Case): Promise<Reply> {
    if (c.http) return await sendHttp(base, c)
    const res = await app.inject({ method: c.method as 'GET', url: c.url, headers: c.headers, ...(c.body === undefined ? {} : { payload: c.body }) })
    return { statusCode: res.statusCode, headers: res.headers, body: res.body }
  }

  function problemOf (route: Route, reply: Reply): string | undefined {
    if (reply.statusCode >= 500) return `answered ${reply.statusCode}`
    if (reply.statusCode < 400) return isOpenRoute(route) ? undefined : `accepted a malformed request (${reply.statusCode})`
    // The MCP transport answers what it refuses itself (a missing Accept, an unknown protocol
    // version) with a JSON-RPC error, as docs/api.md ("MCP") says.
    if (route.template.endsWith('/mcp') && isJsonRpcError(reply.body)) return undefined
    const shape = errorShapeProblem(reply.statusCode, reply.headers['content-type'], reply.body)
    return shape === undefined ? undefined : `${reply.statusCode} not in the error shape: ${shape}`
  }

  const doc = (await request(app, 'GET', '/docs/json')).json<OpenApiDocument>()
  // /v1/ws is an upgrade; its frames have their own suite (ws-fuzz.test.ts).
  // FUZZ_ROUTE=<text> runs only the routes whose "METHOD /path" contains it (the seeds stay those of the full run).
  const only = process.env.FUZZ_ROUTE
  const routes = routesOf(doc).filter(r => r.template !== '/v1/ws')
  t.ok(routes.length >= 30, `${routes.length} routes in the document`)
  let baseline = await snapshot()
  let total = 0
  const started = Date.now()

  for (const [index, route] of routes.entries()) {
    const name = `${route.method} ${route.template}`
    if (only !== undefined && !name.includes(only)) continue
    const statuses: Record<number, number> = {}
    const failures = new Map<string, Failure>()
    let tried = 0
    const routeStarted = Date.now()
    const property = fc.asyncProperty(fc.gen(), async g => {
      const c = makeCase(new Draw(g), route, world)
      tried++
      let reply: Reply
      try {
        reply = await send(c)
      } catch (err) {
        reply = { statusCode: 0, headers: {}, body: String(err) }
      }
      statuses[reply.statusCode] = (statuses[reply.statusCode] ?? 0) + 1
      let problem = reply.statusCode === 0 ? `no answer: ${reply.body}` : problemOf(route, reply)
      // Reads are compared once per route (below), everything else after each case.
      const now = route.method === 'GET' ? baseline : await snapshot()
      const logged = logs.splice(0).filter(l => l.level >= 50)
      if (logged.length > 0) problem = `${problem ?? ''} logged ${logged.map(l => `${l.msg ?? ''}: ${l.err?.message ?? ''}`).join('; ').slice(0, 300)}`
      const unrecorded = activityErrors.splice(0)
      if (unrecorded.length > 0) problem = `${problem ?? ''} its activity entry failed: ${unrecorded.join('; ').slice(0, 400)}`
      if (now !== baseline) {
        problem = `${problem ?? ''}${problem === undefined ? '' : '; '}changed the database (answered ${reply.statusCode})`
        baseline = now
        // Whatever slipped through moved the head: keep the generators' "past the head" past it.
        world.head = expectStatus<{ revision: number }>(await request(app, 'GET', `/v1/workspaces/${ws}`, { token: owner.token }), 200, 'workspace').revision
      }
      if (problem !== undefined) {
        let code = ''
        try { code = String((JSON.parse(reply.body) as { code?: unknown }).code) } catch {}
        const key = `${problem} ${code}`.replace(/\d{3,}/g, 'N')
        const seen = failures.get(key)
        if (seen === undefined || describe(c).length < describe(seen.c).length) failures.set(key, { problem, c, reply })
      }
      return true
    })
    await fc.assert(property, { numRuns: FUZZ_RUNS, seed: FUZZ_SEED + index })
    if (route.method === 'GET') {
      const now = await snapshot()
      if (now !== baseline) failures.set('changed', { problem: 'a read changed the database', c: { method: 'GET', url: route.template, headers: {}, faults: [], http: false }, reply: { statusCode: 0, headers: {}, body: '' } })
      baseline = now
    }
    total += tried
    t.comment(`${name}: ${tried} cases in ${Date.now() - routeStarted} ms; statuses ${JSON.stringify(statuses)}`)
    for (const [key, f] of failures) {
      t.fail(`${name}: ${f.problem}`, { key, case: describe(f.c), answer: `${f.reply.statusCode} ${f.reply.body.slice(0, 500)}`, seed: FUZZ_SEED + index })
    }
    if (failures.size === 0) t.pass(`${name}: ${tried} malformed requests, each 4xx in the error shape, nothing changed`)
  }
  // Below the routes: HTTP that Node's parser refuses, over raw sockets. Same answer shape.
  if (only === undefined || 'raw http'.includes(only)) {
    const requests: Array<[string, string, Record<string, string>, string | undefined]> = [
      ['GET', '/health', {}, undefined],
      ['GET', '/v1/me', { Authorization: `Bearer ${owner.token}` }, undefined],
      ['POST', '/v1/auth/login', { 'Content-Type': 'application/json' }, JSON.stringify({ email: owner.email, password: 'wrong password' })],
      ['PUT', `/v1/workspaces/${ws}/files/a.txt`, { Authorization: `Bearer ${owner.token}`, 'Content-Type': 'application/json' }, '{"content":"x","metadata":[]}']
    ]
    const failures = new Map<string, string>()
    const statuses: Record<number, number> = {}
    let tried = 0
    await fc.assert(fc.asyncProperty(fc.gen(), async g => {
      const d = new Draw(g)
      const [method, path, headers, body] = d.pick(requests)
      const { raw, label } = malformedHttp(d, method, path, headers, body)
      tried++
      const reply = await sendRaw(base, raw)
      statuses[reply.statusCode] = (statuses[reply.statusCode] ?? 0) + 1
      let problem = reply.statusCode < 400 || reply.statusCode >= 500
        ? `answered ${reply.statusCode}`
        : errorShapeProblem(reply.statusCode, reply.headers['content-type'], reply.body)
      if (await snapshot() !== baseline) problem = `${problem ?? ''} changed the database`
      const logged = logs.splice(0).filter(l => l.level >= 50)
      if (logged.length > 0) problem = `${problem ?? ''} logged ${logged.map(l => `${l.msg ?? ''}: ${JSON.stringify(l.err).slice(0, 300)}`).join('; ')}`
      if (problem !== undefined && !failures.has(`${label}: ${problem}`)) failures.set(`${label}: ${problem}`, `${JSON.stringify(raw.toString('latin1').slice(0, 300))} → ${reply.statusCode} ${reply.body.slice(0, 200)}`)
      return true
    }), { numRuns: FUZZ_RUNS, seed: FUZZ_SEED + 1000 })
    total += tried
    t.comment(`raw HTTP: ${tried} cases; statuses ${JSON.stringify(statuses)}`)
    for (const [problem, example] of failures) t.fail(`raw HTTP: ${problem}`, { example })
    if (failures.size === 0) t.pass(`raw HTTP: ${tried} requests Node's parser refuses, each 4xx in the error shape`)
  }
  t.comment(`${total} cases over ${routes.length} routes in ${((Date.now() - started) / 1000).toFixed(1)} s (FUZZ_SEED=${FUZZ_SEED}, FUZZ_RUNS=${FUZZ_RUNS})`)
  console.log(`openapi-fuzz: ${total} cases over ${routes.length} routes, seed ${FUZZ_SEED}`)
})

function isJsonRpcError (body: string): boolean {
  try {
    const m = JSON.parse(body) as { jsonrpc?: unknown, error?: { code?: unknown, message?: unknown } }
    return m.jsonrpc === '2.0' && typeof m.error?.code === 'number' && typeof m.error.message === 'string'
  } catch {
    return false
  }
}
