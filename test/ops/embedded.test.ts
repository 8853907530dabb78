import t, { type Test } from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve as resolvePath } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Change, ChangesPage, ErrorResponse, FileBody, OpResult, PutResult, TreePage } from '../helpers/scale.js'

/**
 * The embedded mode as a user runs it: a real server process on PGlite in DATA_DIR, no DATABASE_URL
 * and no JWT_SECRET, spoken to over real HTTP; then restarted on the same DATA_DIR.
 */

const ROOT_DIR = resolvePath(fileURLToPath(new URL('../..', import.meta.url)))
const START_TIMEOUT_MS = 90_000

async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address()
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0
      srv.close(() => { resolve(port) })
    })
  })
}

interface Server {
  child: ChildProcess
  base: string
  output: () => string
  exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
}

/** The environment a user would have: ours minus the database, secrets and the test runner's hooks. */
function childEnv (port: number, dataDir: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(DATABASE_URL|JWT_SECRET|JWT_PUBLIC_KEY|REDIS_URL|NODE_OPTIONS|LOG_LEVEL|PORT|HOST|DATA_DIR|NODE_ENV)$/.test(k)) continue
    if (/^_?TAP/i.test(k)) continue
    env[k] = v
  }
  return { ...env, PORT: String(port), HOST: '127.0.0.1', DATA_DIR: dataDir, NODE_ENV: 'test' }
}

async function startServer (t: Tap, dataDir: string): Promise<Server> {
  const port = await freePort()
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    cwd: ROOT_DIR,
    env: childEnv(port, dataDir),
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let out = ''
  child.stdout?.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr?.on('data', (d: Buffer) => { out += d.toString() })
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>(resolve => {
    child.once('exit', (code, signal) => { resolve({ code, signal }) })
  })
  let done = false
  void exited.then(() => { done = true })
  t.teardown(async () => {
    if (!done) {
      child.kill('SIGKILL')
      await exited
    }
  })
  const base = `http://127.0.0.1:${port}`
  const deadline = Date.now() + START_TIMEOUT_MS
  for (;;) {
    if (done) throw new Error(`server exited before it answered /health:\n${out.slice(-3000)}`)
    if (Date.now() > deadline) throw new Error(`server did not answer /health within ${START_TIMEOUT_MS} ms:\n${out.slice(-3000)}`)
    try {
      const res = await fetch(`${base}/health`, { signal: AbortSignal.timeout(2000) })
      if (res.status === 200) break
    } catch {
      // not listening yet
    }
    await new Promise(resolve => setTimeout(resolve, 250))
  }
  return { child, base, output: () => out, exited }
}

type Tap = Test

interface HttpReply { status: number, headers: Headers, text: string }

async function http (base: string, method: string, path: string, token?: string, body?: unknown, headers: Record<string, string> = {}): Promise<HttpReply> {
  const h: Record<string, string> = { ...headers }
  if (token !== undefined) h.authorization = `Bearer ${token}`
  if (body !== undefined) h['content-type'] = 'application/json'
  const res = await fetch(base + path, {
    method,
    headers: h,
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(30_000)
  })
  return { status: res.status, headers: res.headers, text: await res.text() }
}

const json = <T>(r: HttpReply): T => JSON.parse(r.text) as T

interface AuthBody { user: { id: string, email: string }, accessToken: string, refreshToken: string, sessionId: string }

t.test('embedded PGlite server: use it over HTTP, restart it, the data and the secret survive', { timeout: 240_000 }, async t => {
  const dataDir = mkdtempSync(join(tmpdir(), 'wb-embedded-'))
  t.teardown(() => { rmSync(dataDir, { recursive: true, force: true }) })
  const email = `embedded-${Date.now()}@example.com`
  const password = 'correct horse battery'

  // ---- first run
  const first = await startServer(t, dataDir)
  t.teardown(() => { if (t.passing() === false) t.comment(`first server output:\n${first.output().slice(-4000)}`) })

  const reg = await http(first.base, 'POST', '/v1/auth/register', undefined, { email, password })
  t.equal(reg.status, 201, `register: ${reg.text.slice(0, 300)}`)
  if (reg.status !== 201) return
  const { accessToken: token, user } = json<AuthBody>(reg)
  t.ok(existsSync(join(dataDir, 'jwt-secret')), 'the generated secret is kept in DATA_DIR')
  t.ok(existsSync(join(dataDir, 'pgdata')), 'the database lives in DATA_DIR')

  const wsRes = await http(first.base, 'POST', '/v1/workspaces', token, { name: 'embedded' })
  t.equal(wsRes.status, 201, `create workspace: ${wsRes.text.slice(0, 300)}`)
  if (wsRes.status !== 201) return
  const ws = json<{ id: string }>(wsRes).id
  const files = `/v1/workspaces/${ws}/files`

  const content1 = 'héllo wörld ✓\n'
  const put1 = await http(first.base, 'PUT', `${files}/notes/hello.txt`, token, { content: content1 })
  t.equal(put1.status, 201, `PUT create: ${put1.text.slice(0, 300)}`)
  if (put1.status !== 201) return
  const created = json<PutResult>(put1)
  t.equal(created.revision, 1, 'create is revision 1')
  t.match(created.file, { path: '/notes/hello.txt', name: 'hello.txt', kind: 'file', version: 1, size: Buffer.byteLength(content1) })

  const get1 = await http(first.base, 'GET', `${files}/notes/hello.txt`, token)
  t.equal(get1.status, 200, 'GET the file')
  t.equal(json<FileBody>(get1).content, content1, 'content round-trips over HTTP')
  t.equal(get1.headers.get('etag')?.replace(/^W\//, '').replace(/"/g, ''), created.file.etag, 'ETag header is the etag')

  const content2 = content1 + 'second line\n'
  const put2 = await http(first.base, 'PUT', `${files}/notes/hello.txt`, token, { content: content2 }, { 'if-match': `"${created.file.etag}"` })
  t.equal(put2.status, 200, `PUT update with If-Match: ${put2.text.slice(0, 300)}`)
  const updated = json<PutResult>(put2)
  t.equal(updated.revision, 2, 'update is revision 2')

  const stale = await http(first.base, 'PUT', `${files}/notes/hello.txt`, token, { content: 'stale' }, { 'if-match': `"${created.file.etag}"` })
  t.equal(stale.status, 412, 'stale If-Match is 412')
  t.equal(json<ErrorResponse>(stale).code, 'PRECONDITION_FAILED')

  const move = await http(first.base, 'POST', `/v1/workspaces/${ws}/operations`, token, { type: 'move', path: '/notes/hello.txt', newPath: '/docs/café.txt' })
  t.equal(move.status, 200, `move: ${move.text.slice(0, 300)}`)
  const moved = json<OpResult>(move)
  t.equal(moved.revision, 3, 'move is revision 3')
  t.match(moved.data, { path: '/docs/café.txt', kind: 'file', version: 2 }, 'data is the file at its new path, version kept')

  const tree = await http(first.base, 'GET', `/v1/workspaces/${ws}/tree?path=/&depth=0`, token)
  t.equal(tree.status, 200, `tree: ${tree.text.slice(0, 300)}`)
  const treeBody = json<TreePage>(tree)
  t.equal(treeBody.revision, 3, 'tree revision')
  t.same(treeBody.entries.map(e => e.path), ['/docs', '/docs/café.txt', '/notes'], 'tree entries sorted by path')
  t.equal(treeBody.nextCursor, null)

  const changesRes = await http(first.base, 'GET', `/v1/workspaces/${ws}/changes?since=0`, token)
  t.equal(changesRes.status, 200, `changes: ${changesRes.text.slice(0, 300)}`)
  const feed = json<ChangesPage>(changesRes)
  t.equal(feed.head, 3, 'head')
  const summary = (c: Change): Record<string, unknown> => ({ revision: c.revision, op: c.op, path: c.path, newPath: c.newPath })
  t.same(feed.changes.map(summary), [
    { revision: 1, op: 'create', path: '/notes/hello.txt', newPath: null },
    { revision: 2, op: 'update', path: '/notes/hello.txt', newPath: null },
    { revision: 3, op: 'move', path: '/notes/hello.txt', newPath: '/docs/café.txt' }
  ], '3 changes in order')
  t.ok(feed.changes.every(c => c.userId === user.id), 'changes carry the user')

  const before = await http(first.base, 'GET', `${files}/docs/caf%C3%A9.txt`, token)
  t.equal(before.status, 200, 'moved file readable (percent-encoded URL)')
  const beforeBody = json<FileBody>(before)

  // ---- graceful stop
  first.child.kill('SIGTERM')
  const stop = await Promise.race([
    first.exited,
    new Promise<'timeout'>(resolve => setTimeout(() => { resolve('timeout') }, 30_000))
  ])
  t.not(stop, 'timeout', 'exits within 30 s of SIGTERM')
  if (stop !== 'timeout') {
    t.equal(stop.code, 0, `exit code 0 after SIGTERM (signal ${String(stop.signal)}); output:\n${stop.code === 0 ? '' : first.output().slice(-2000)}`)
  }

  // ---- second run on the same DATA_DIR
  const second = await startServer(t, dataDir)
  t.teardown(() => { if (t.passing() === false) t.comment(`second server output:\n${second.output().slice(-4000)}`) })

  const me = await http(second.base, 'GET', '/v1/me', token)
  t.equal(me.status, 200, 'an access token from the first run still verifies (secret kept)')

  const login = await http(second.base, 'POST', '/v1/auth/login', undefined, { email, password })
  t.equal(login.status, 200, `login after restart: ${login.text.slice(0, 300)}`)
  if (login.status !== 200) return
  const token2 = json<AuthBody>(login).accessToken
  t.equal(json<AuthBody>(login).user.id, user.id, 'same user')

  const after = await http(second.base, 'GET', `${files}/docs/caf%C3%A9.txt`, token2)
  t.equal(after.status, 200, `read the moved file after restart: ${after.text.slice(0, 300)}`)
  const afterBody = json<FileBody>(after)
  t.equal(afterBody.content, content2, 'same content')
  t.equal(afterBody.etag, beforeBody.etag, 'same etag')
  t.equal(afterBody.version, beforeBody.version, 'same version')
  t.equal(afterBody.sha256, beforeBody.sha256, 'same sha256')

  const wsAfter = await http(second.base, 'GET', `/v1/workspaces/${ws}`, token2)
  t.equal(wsAfter.status, 200)
  t.equal(json<{ revision: number }>(wsAfter).revision, 3, 'same workspace revision')

  const feedAfter = await http(second.base, 'GET', `/v1/workspaces/${ws}/changes?since=0`, token2)
  t.equal(feedAfter.status, 200)
  t.same(json<ChangesPage>(feedAfter).changes.map(c => c.revision), [1, 2, 3], 'the change feed survived')

  const oldPath = await http(second.base, 'GET', `${files}/notes/hello.txt`, token2)
  t.equal(oldPath.status, 404, 'the old path is still gone')

  // the next write continues the revision sequence
  const put3 = await http(second.base, 'PUT', `${files}/docs/café.txt`, token2, { content: 'third' }, { 'if-match': `"${afterBody.etag}"` })
  t.equal(put3.status, 200, `write after restart: ${put3.text.slice(0, 300)}`)
  t.equal(json<PutResult>(put3).revision, 4, 'revision 4 after restart')

  second.child.kill('SIGTERM')
  const stop2 = await Promise.race([first.exited.then(() => second.exited), new Promise<'timeout'>(resolve => setTimeout(() => { resolve('timeout') }, 30_000))])
  t.not(stop2, 'timeout', 'second server stops too')
  if (stop2 !== 'timeout') t.equal(stop2.code, 0, 'second exit code 0')
})
