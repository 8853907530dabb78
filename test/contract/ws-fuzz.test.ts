import fc from 'fast-check'
import t from 'tap'
import { ClientMessage, RpcParams } from '../../schemas/ws.js'
import { build, createTestDatabase, createWorkspace, dbClient, listen, PASSWORD, registerUser } from '../helpers/app.js'
import { expectStatus, request } from '../helpers/http.js'
import { connect, type Client, type Msg } from '../helpers/ws.js'
import WebSocket from 'ws'
import { Draw, FUZZ_RUNS, FUZZ_SEED, NESTING, databaseDigest, Raw, badIds, badPath, badTreeCursor, errorShapeProblem, nested, toJson, uuid, type Schema, type World } from '../helpers/fuzz.js'
import { applySemantic, freshPath, siteFault, validContent, validOperation } from '../helpers/fuzz-cases.js'

/**
 * The WebSocket half of the property-based suite (issue 10): malformed frames of every message
 * type (junk, subscribe, unsubscribe, broadcast, presence.set, auth, and each RPC method's params), generated
 * from schemas/ws.ts with fast-check. Each frame must be answered with exactly one `error` or
 * `rpc.error` frame (before the `pong` of the ping sent after it) whose code is never INTERNAL;
 * the socket stays open and the database is as it was.
 */

const RUNS = Math.max(50, Math.round(FUZZ_RUNS / 2))
type Json = unknown

t.test('malformed WebSocket frames: one error frame each, never INTERNAL, the socket stays open, nothing changed', async t => {
  const databaseUrl = await createTestDatabase(t)
  const app = await build(t, { DATABASE_URL: databaseUrl, MAX_FILE_BYTES: '65536', WS_MESSAGES_PER_SECOND: '1000000', MAX_NEW_SESSIONS_PER_WINDOW: '1000000', WS_MAX_PAYLOAD: String(4 * 1024 * 1024) })
  const base = await listen(app)
  // A refused RPC mutation is recorded after its answer; a failure there is silent: watch for it.
  const activityErrors: string[] = []
  const record = app.activity.record.bind(app.activity)
  app.activity.record = async (entry, onError) => {
    await record(entry, err => {
      activityErrors.push(`${String(err)} recording ${JSON.stringify(entry).slice(0, 300)}`)
      onError?.(err)
    })
  }
  const db = await dbClient(t, databaseUrl)
  const owner = await registerUser(app)
  const stranger = await registerUser(app)
  const ws = await createWorkspace(app, owner, 'fuzz target')
  const strangerWs = await createWorkspace(app, stranger, 'elsewhere')
  const files = ['/a.txt', '/b.txt', '/d/c.md', '/d/e/f.txt']
  for (const path of files) {
    expectStatus(await request(app, 'PUT', `/v1/workspaces/${ws}/files${path}`, { token: owner.token, payload: { content: `content of ${path}` } }), 201, `write ${path}`)
  }
  const head = expectStatus<{ revision: number }>(await request(app, 'GET', `/v1/workspaces/${ws}`, { token: owner.token }), 200, 'workspace').revision
  const world: World = {
    owner: { id: owner.id, email: owner.email, token: owner.token, sessionId: owner.sessionId },
    member: { id: stranger.id, email: stranger.email },
    stranger: { id: stranger.id, sessionId: stranger.sessionId, ws: strangerWs },
    refreshToken: owner.refreshToken,
    password: PASSWORD,
    ws,
    head,
    files,
    dirs: ['/d', '/d/e'],
    badTokens: {},
    ghostToken: ''
  }

  const snapshot = async (): Promise<string> => await databaseDigest(db)

  const schemaOf = (type: string): Schema => ClientMessage.anyOf.find(s => s.properties.type.const === type) as unknown as Schema
  const channel = (id: string): string => `workspace:${id}`
  const badChannel = (d: Draw): string => d.pick([
    ...badIds(d, ws).map(channel), channel(strangerWs), channel(uuid()), `Workspace:${ws}`, `workspace;${ws}`, `workspace:${ws}:x`, `workspaces:${ws}`,
    ws, '', 'workspace:', `workspace:${ws}\u0000`, 'workspace:\ud800', `${channel(ws)} `, 'x'.repeat(5000)
  ])

  /** Valid params of an RPC method (they always get a fault: reads would succeed otherwise). */
  function validParams (d: Draw, method: string): Record<string, Json> {
    switch (method) {
      case 'files.read': return { workspaceId: ws, path: d.pick(['/', ...files, '/d']), ...(d.chance(30) ? { format: d.pick(['json', 'raw']) } : {}), ...(d.chance(30) ? { revision: d.int(0, head) } : {}) }
      case 'files.write': return { workspaceId: ws, path: freshPath(d), ...validContent(d) }
      case 'files.delete': return { workspaceId: ws, path: d.pick(files) }
      case 'operations.apply': return { workspaceId: ws, ...validOperation(d, world) }
      case 'operations.batch': return { workspaceId: ws, operations: [validOperation(d, world), ...(d.chance(50) ? [validOperation(d, world)] : [])] }
      case 'tree.list': return { workspaceId: ws, ...(d.chance(50) ? { path: d.pick(['/', '/d']) } : {}), ...(d.chance(30) ? { depth: d.int(0, 3) } : {}) }
      case 'changes.list': return { workspaceId: ws, ...(d.chance(50) ? { since: d.int(0, head) } : {}) }
      case 'search': return { workspaceId: ws, query: d.pick(['a', 'x', 'content']), ...(d.chance(30) ? { isRegex: true } : {}) }
      case 'find': return { workspaceId: ws, q: d.pick(['a', 'fz', 'txt']) }
      case 'workspaces.fork': return { workspaceId: ws, name: d.pick(['fuzz fork', d.oddText(10) || 'x']), ...(d.chance(30) ? { revision: d.int(0, head) } : {}) }
    }
    throw new Error(method)
  }

  /** A malformed RPC call: params with a fault, or a bad id or method. */
  function rpcFrame (d: Draw, method: string): { frame: string, label: string } {
    let params: Json = validParams(d, method)
    let label: string
    const c = d.int(0, 9)
    if (c < 5) {
      const fault = siteFault(d, RpcParams[method as keyof typeof RpcParams] as unknown as Schema, params, world)
      params = fault.value
      label = fault.label
      if (fault.raw !== undefined) return { frame: `{"type":"rpc","id":"f","method":${JSON.stringify(method)},"params":${fault.raw}}`, label }
    } else if (c < 6) {
      params = { ...(params as object), workspaceId: d.pick([strangerWs, uuid(), ...badIds(d, ws)]) }
      label = 'workspaceId'
    } else if (c < 7 && 'path' in (params as object)) {
      params = { ...(params as object), path: badPath(d, '/d') }
      label = 'bad path'
    } else if (c < 8 && (method === 'operations.apply' || method === 'operations.batch')) {
      const f = { body: params, tail: '', headers: {}, query: [], params: {}, valid: {}, method: 'POST', rawBody: undefined, http: false }
      label = applySemantic(d, { method: 'POST', template: method === 'operations.batch' ? '/operations/batch' : '/operations', params: [], body: undefined, secured: true }, world, f)
      params = { ...(f.body as object), workspaceId: ws }
    } else if (c < 8 && method === 'tree.list') {
      params = { ...(params as object), cursor: badTreeCursor(d) }
      label = 'bad cursor'
    } else if (c < 8 && method === 'files.read') {
      params = { ...(params as object), path: freshPath(d) }
      label = 'missing path'
    } else {
      const which = d.pick(['id', 'method', 'params'])
      label = `bad ${which}`
      const id = which === 'id' ? d.pick<Json>([null, true, {}, [], 'x'.repeat(201), nested(1000, 'array')]) : 'f'
      const m = which === 'method' ? d.pick(['', 'files', 'files.READ', 'toString', '__proto__', 'constructor', 'files.read ', 'x'.repeat(101), 'operations.apply\u0000', 'hasOwnProperty']) : method
      const p = which === 'params' ? d.pick<Json>([null, 'x', 1, [], nested(d.pick(NESTING), 'array')]) : params
      return { frame: toJson({ type: 'rpc', id, method: m, params: p }), label }
    }
    return { frame: toJson({ type: 'rpc', id: d.chance(50) ? 'f' : d.int(0, 1e6), method, params }), label }
  }

  function frameFor (d: Draw, kind: string): { frame: string, label: string } {
    switch (kind) {
      case 'junk': {
        const f = d.pick<string>(['', ' ', '{', 'null', '1', '"ping"', '[]', '[{"type":"ping"}]', '{}', '{"type":null}', '{"type":"PING"}', '{"type":"pong"}',
          '{"type":"rpc.result"}', '{"type":"event"}', '{"type":"toString"}', '{"type":"__proto__"}', '{"type":"subscribe"', '\u0000', '{"type":"ping"}x',
          '['.repeat(d.pick(NESTING)), '['.repeat(100_000) + ']'.repeat(100_000), `{"type":${'['.repeat(50_000)}]}`, '{"__proto__":{"type":"ping"}}',
          '{"type":"ping","type":"subscribe"}', "{'type':'ping'}", '{"type":"\\ud800"}', d.oddText(20)])
        return { frame: f, label: `junk ${JSON.stringify(f.slice(0, 30))}` }
      }
      case 'subscribe': case 'unsubscribe': case 'broadcast': {
        const msg: Record<string, Json> = { type: kind, channel: channel(ws) }
        if (kind === 'subscribe' && d.chance(50)) msg.since = d.int(0, head)
        if (kind === 'broadcast') msg.data = d.pick<Json>([{ cursor: 1 }, 'x', null, nested(d.pick([1000, 100_000]), 'array')])
        const c = d.int(0, 9)
        if (c < 4 || kind !== 'subscribe') {
          // A broadcast on a channel this socket did not subscribe to is refused even when well formed.
          if (kind === 'broadcast' && d.chance(30)) return { frame: toJson(msg), label: 'broadcast unsubscribed' }
          // Unsubscribing from a channel one is not on is fine: only malformed channels there.
          msg.channel = kind === 'unsubscribe' ? channel(d.pick(badIds(d, ws))) : badChannel(d)
          return { frame: toJson(msg), label: `channel ${JSON.stringify(String(msg.channel).slice(0, 50))}` }
        }
        if (c < 7) {
          const since = d.pick<Json>([-1, 1.5, new Raw('1e400'), new Raw('-1e400'), '1', null, true, {}, [], new Raw('0.5e1x'), -0.5])
          msg.since = since
          return { frame: toJson(msg), label: `since ${toJson(since)}` }
        }
        const fault = siteFault(d, schemaOf(kind), msg, world)
        if (fault.label.startsWith('extra')) return { frame: toJson({ ...msg, channel: badChannel(d) }), label: 'channel' }
        return { frame: fault.raw ?? toJson(fault.value), label: fault.label }
      }
      case 'presence.set': {
        // The socket is subscribed to `ws` here (see the loop): every frame is refused all the same.
        const c = d.int(0, 9)
        if (c < 2) {
          const msg = { type: kind, channel: badChannel(d), state: { file: '/a.txt' } }
          return { frame: toJson(msg), label: `channel ${JSON.stringify(msg.channel.slice(0, 50))}` }
        }
        if (c < 4) {
          const state = d.pick<Json>(['x', 1, null, true, [], [{ a: 1 }], new Raw('1e400'), nested(d.pick([10, 1000]), 'array')])
          return { frame: toJson({ type: kind, channel: channel(ws), state }), label: `state ${toJson(state).slice(0, 30)}` }
        }
        if (c < 6) {
          const state = d.chance(50) ? { s: 'x'.repeat(d.int(2041, 100_000)) } : { a: Array.from({ length: d.int(700, 3000) }, (_, i) => i) }
          return { frame: toJson({ type: kind, channel: channel(ws), state }), label: 'state too large' }
        }
        if (c < 8) {
          const raw = `{"type":"presence.set","channel":"${channel(ws)}","state":{"a":${d.chance(50) ? nested(d.pick([4, 50, 100_000]), 'array').text : nested(d.pick([4, 50, 100_000]), 'object').text}}}`
          return { frame: raw, label: 'state too deep' }
        }
        const fault = siteFault(d, schemaOf(kind), { type: kind, channel: channel(ws), state: { file: '/a.txt' } }, world)
        if (fault.label.startsWith('extra') || fault.label.includes('state')) return { frame: toJson({ type: kind, channel: badChannel(d), state: {} }), label: 'channel' }
        return { frame: fault.raw ?? toJson(fault.value), label: fault.label }
      }
      case 'auth': {
        // Only what the schema refuses: a token it accepts would be checked, and a bad one closes the socket (4401).
        const token = d.pick<Json>(['', 'x'.repeat(8193), 1, null, {}, [], true])
        const msg = d.chance(50) ? { type: 'auth', token } : { type: 'auth', token: owner.token, sessionId: d.pick(badIds(d, owner.sessionId)) }
        return { frame: toJson(msg), label: `auth ${toJson(msg).slice(0, 40)}` }
      }
      default: return rpcFrame(d, kind)
    }
  }

  // Frames stay under WS_MAX_PAYLOAD (4 MiB here; 200k-deep nesting is 1.2 MB): over it is a 1009 close, by design.
  let client: Client = await connect(t, base, { token: owner.token })
  const baseline = await snapshot()
  const kinds = ['junk', 'subscribe', 'unsubscribe', 'broadcast', 'auth', ...Object.keys(RpcParams), 'presence.set']
  let total = 0
  const started = Date.now()
  for (const [index, kind] of kinds.entries()) {
    // Whatever slipped through: no subscription carries over to the next kind (a broadcast would then be fine).
    await client.request({ type: 'unsubscribe', channel: channel(ws) }, ['unsubscribed'])
    // presence.set is checked past the subscription: its frames go to a subscribed channel.
    if (kind === 'presence.set') {
      const from = client.messages.length
      await client.join(ws)
      await client.next(m => m.type === 'presence.members', 'presence.members', from)
    }
    const failures = new Map<string, string>()
    const codes: Record<string, number> = {}
    let tried = 0
    await fc.assert(fc.asyncProperty(fc.gen(), async g => {
      const { frame, label } = frameFor(new Draw(g), kind)
      tried++
      const from = client.messages.length
      client.send(frame)
      client.send({ type: 'ping' })
      let answers: Msg[] = []
      let problem: string | undefined
      try {
        const pong = await client.next(m => m.type === 'pong', 'pong', from, 10_000)
        answers = client.messages.slice(from, client.messages.indexOf(pong)).filter(m => m.type !== 'event')
      } catch (err) {
        problem = `no pong: ${String(err).slice(0, 200)}`
      }
      const answer = answers[0]
      if (problem === undefined) {
        if (answers.length !== 1 || answer === undefined) problem = `${answers.length} answers`
        else if (answer.type !== 'error' && answer.type !== 'rpc.error') problem = `answered ${answer.type}`
        else {
          const error = (answer.type === 'error' ? answer : answer.error) as { code?: unknown, message?: unknown }
          codes[String(error.code)] = (codes[String(error.code)] ?? 0) + 1
          if (error.code === 'INTERNAL') problem = 'INTERNAL'
          else if (typeof error.code !== 'string' || typeof error.message !== 'string' || error.message === '') problem = 'not an error shape'
        }
      }
      if (await snapshot() !== baseline) problem = `${problem ?? ''} changed the database`
      const unrecorded = activityErrors.splice(0)
      if (unrecorded.length > 0) problem = `${problem ?? ''} its activity entry failed: ${unrecorded.join('; ').slice(0, 300)}`
      if (client.isClosed) {
        problem = `${problem ?? ''} closed the socket ${JSON.stringify(await client.closed)}`
        client = await connect(t, base, { token: owner.token })
      }
      if (problem !== undefined && !failures.has(problem)) failures.set(problem, `${label}: ${frame.slice(0, 300)} → ${JSON.stringify(answers).slice(0, 400)}`)
      return true
    }), { numRuns: RUNS, seed: FUZZ_SEED + 100 + index })
    total += tried
    t.comment(`${kind}: ${tried} frames; codes ${JSON.stringify(codes)}`)
    for (const [problem, example] of failures) t.fail(`${kind}: ${problem}`, { example })
    if (failures.size === 0) t.pass(`${kind}: ${tried} malformed frames, one error frame each, never INTERNAL`)
  }
  // The upgrade itself: a malformed X-Session-Id is refused over HTTP (400 in the error shape); a
  // bad token or another user's session is let in and closed (4401, 4403), never `connected`.
  const upgradeFailures = new Map<string, string>()
  const outcomes: Record<string, number> = {}
  let upgrades = 0
  await fc.assert(fc.asyncProperty(fc.gen(), async g => {
    const d = new Draw(g)
    const badSession = d.chance(50)
    const headers: Record<string, string> = {}
    if (badSession) {
      headers['x-session-id'] = d.pick(badIds(d, owner.sessionId).filter(v => /^[\x21-\x7e]+$/.test(v)))
      if (d.chance(70)) headers.authorization = `Bearer ${owner.token}`
    } else {
      headers.authorization = d.pick(['Bearer x', `Bearer ${owner.token}x`, `Basic ${owner.token}`, 'Bearer a.b.c', `Bearer ${owner.token.split('.').slice(0, 2).join('.')}.`])
      if (d.chance(30)) headers['x-session-id'] = stranger.sessionId
    }
    upgrades++
    const socket = new WebSocket(`${base.replace(/^http/, 'ws')}/v1/ws`, { headers })
    const outcome = await new Promise<{ status?: number, body?: string, close?: number, connected: boolean }>(resolve => {
      let connected = false
      socket.on('message', data => { if (String(data).includes('"connected"')) connected = true })
      socket.once('unexpected-response', (_req, res) => {
        let body = ''
        res.on('data', (c: Buffer) => { body += c.toString() })
        res.on('end', () => { resolve({ status: res.statusCode ?? 0, body, connected }) })
      })
      socket.once('close', code => { resolve({ close: code, connected }) })
      socket.on('error', () => {})
      setTimeout(() => { socket.terminate(); resolve({ close: -1, connected }) }, 7_000)
    })
    const key = outcome.status !== undefined ? `HTTP ${outcome.status}` : `close ${outcome.close ?? ''}`
    outcomes[key] = (outcomes[key] ?? 0) + 1
    let problem: string | undefined
    if (badSession && headers['x-session-id'] !== stranger.sessionId) {
      if (outcome.status !== 400) problem = `malformed X-Session-Id: ${key}`
      else if (errorShapeProblem(400, 'application/json', outcome.body ?? '') !== undefined) problem = `not the error shape: ${outcome.body ?? ''}`
    } else if (outcome.connected || !(outcome.status === 401 || outcome.close === 4401 || outcome.close === 4403)) {
      problem = `bad token or foreign session: ${key}${outcome.connected ? ' after connected' : ''}`
    }
    if (problem !== undefined && !upgradeFailures.has(problem)) upgradeFailures.set(problem, JSON.stringify(headers).slice(0, 300))
    return true
  }), { numRuns: Math.min(RUNS, 100), seed: FUZZ_SEED + 99 })
  total += upgrades
  t.comment(`upgrade: ${upgrades} upgrades; ${JSON.stringify(outcomes)}`)
  for (const [problem, example] of upgradeFailures) t.fail(`upgrade: ${problem}`, { example })
  if (upgradeFailures.size === 0) t.pass(`upgrade: ${upgrades} bad upgrades refused or closed, never connected`)

  t.notOk(client.isClosed, 'the socket is still open')
  t.comment(`${total} frames over ${kinds.length} message types and upgrades in ${((Date.now() - started) / 1000).toFixed(1)} s (FUZZ_SEED=${FUZZ_SEED})`)
  console.log(`ws-fuzz: ${total} cases (frames over ${kinds.length} message types, and upgrades), seed ${FUZZ_SEED}`)
})
