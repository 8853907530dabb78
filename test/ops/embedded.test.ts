import t from 'tap'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PASSWORD, spawnServer, type ServerProcess, type Teardown } from '../helpers/app.js'
import { request, type AuthResult, type Change, type ChangesResult, type ErrorReply, type FileBody, type OperationResult, type TreeResult, type Workspace, type WriteResult } from '../helpers/http.js'

/**
 * The embedded mode as a user runs it: a real server process on PGlite in DATA_DIR, no DATABASE_URL
 * and no JWT_SECRET, spoken to over real HTTP; then restarted on the same DATA_DIR.
 */

/** The environment a user would have (ours minus the database, secrets and the test runner's hooks), on DATA_DIR. */
async function startServer (t: Teardown, dataDir: string): Promise<ServerProcess> {
  return await spawnServer(t, { baseEnv: 'user', env: { DATA_DIR: dataDir }, readyTimeoutMs: 90_000 })
}

t.test('embedded PGlite server: use it over HTTP, restart it, the data and the secret survive', { timeout: 240_000 }, async t => {
  const dataDir = mkdtempSync(join(tmpdir(), 'wb-embedded-'))
  t.teardown(() => { rmSync(dataDir, { recursive: true, force: true }) })
  const email = `embedded-${Date.now()}@example.com`
  const password = PASSWORD

  // ---- first run
  const first = await startServer(t, dataDir)
  t.teardown(() => { if (t.passing() === false) t.comment(`first server output:\n${first.output().slice(-4000)}`) })

  const reg = await request(first.base, 'POST', '/v1/auth/register', { payload: { email, password } })
  t.equal(reg.statusCode, 201, `register: ${reg.body.slice(0, 300)}`)
  if (reg.statusCode !== 201) return
  const { accessToken: token, user } = reg.json<AuthResult>()
  t.ok(existsSync(join(dataDir, 'jwt-secret')), 'the generated secret is kept in DATA_DIR')
  t.ok(existsSync(join(dataDir, 'pgdata')), 'the database lives in DATA_DIR')

  const wsRes = await request(first.base, 'POST', '/v1/workspaces', { token, payload: { name: 'embedded' } })
  t.equal(wsRes.statusCode, 201, `create workspace: ${wsRes.body.slice(0, 300)}`)
  if (wsRes.statusCode !== 201) return
  const ws = wsRes.json<{ id: string }>().id
  const files = `/v1/workspaces/${ws}/files`

  const content1 = 'héllo wörld ✓\n'
  const put1 = await request(first.base, 'PUT', `${files}/notes/hello.txt`, { token, payload: { content: content1 } })
  t.equal(put1.statusCode, 201, `PUT create: ${put1.body.slice(0, 300)}`)
  if (put1.statusCode !== 201) return
  const created = put1.json<WriteResult>()
  t.equal(created.revision, 1, 'create is revision 1')
  t.match(created.file, { path: '/notes/hello.txt', name: 'hello.txt', kind: 'file', version: 1, size: Buffer.byteLength(content1) })

  const get1 = await request(first.base, 'GET', `${files}/notes/hello.txt`, { token })
  t.equal(get1.statusCode, 200, 'GET the file')
  t.equal(get1.json<FileBody>().content, content1, 'content round-trips over HTTP')
  t.equal((get1.headers.etag as string | undefined)?.replace(/^W\//, '').replace(/"/g, ''), created.file.etag, 'ETag header is the etag')

  const content2 = content1 + 'second line\n'
  const put2 = await request(first.base, 'PUT', `${files}/notes/hello.txt`, { token, payload: { content: content2 }, headers: { 'if-match': `"${created.file.etag}"` } })
  t.equal(put2.statusCode, 200, `PUT update with If-Match: ${put2.body.slice(0, 300)}`)
  const updated = put2.json<WriteResult>()
  t.equal(updated.revision, 2, 'update is revision 2')

  const stale = await request(first.base, 'PUT', `${files}/notes/hello.txt`, { token, payload: { content: 'stale' }, headers: { 'if-match': `"${created.file.etag}"` } })
  t.equal(stale.statusCode, 412, 'stale If-Match is 412')
  t.equal(stale.json<ErrorReply>().code, 'PRECONDITION_FAILED')

  const move = await request(first.base, 'POST', `/v1/workspaces/${ws}/operations`, { token, payload: { type: 'move', path: '/notes/hello.txt', newPath: '/docs/café.txt' } })
  t.equal(move.statusCode, 200, `move: ${move.body.slice(0, 300)}`)
  const moved = move.json<OperationResult>()
  t.equal(moved.revision, 3, 'move is revision 3')
  t.match(moved.data, { path: '/docs/café.txt', kind: 'file', version: 2 }, 'data is the file at its new path, version kept')

  const tree = await request(first.base, 'GET', `/v1/workspaces/${ws}/tree?path=/&depth=0`, { token })
  t.equal(tree.statusCode, 200, `tree: ${tree.body.slice(0, 300)}`)
  const treeBody = tree.json<TreeResult>()
  t.equal(treeBody.revision, 3, 'tree revision')
  t.same(treeBody.entries.map(e => e.path), ['/docs', '/docs/café.txt', '/notes'], 'tree entries sorted by path')
  t.equal(treeBody.nextCursor, null)

  const changesRes = await request(first.base, 'GET', `/v1/workspaces/${ws}/changes?since=0`, { token })
  t.equal(changesRes.statusCode, 200, `changes: ${changesRes.body.slice(0, 300)}`)
  const feed = changesRes.json<ChangesResult>()
  t.equal(feed.head, 3, 'head')
  const summary = (c: Change): Record<string, unknown> => ({ revision: c.revision, op: c.op, path: c.path, newPath: c.newPath })
  t.same(feed.changes.map(summary), [
    { revision: 1, op: 'create', path: '/notes/hello.txt', newPath: null },
    { revision: 2, op: 'update', path: '/notes/hello.txt', newPath: null },
    { revision: 3, op: 'move', path: '/notes/hello.txt', newPath: '/docs/café.txt' }
  ], '3 changes in order')
  t.ok(feed.changes.every(c => c.userId === user.id), 'changes carry the user')

  const before = await request(first.base, 'GET', `${files}/docs/caf%C3%A9.txt`, { token })
  t.equal(before.statusCode, 200, 'moved file readable (percent-encoded URL)')
  const beforeBody = before.json<FileBody>()

  // ---- graceful stop
  first.kill('SIGTERM')
  const stop = await Promise.race([
    first.exited,
    new Promise<'timeout'>(resolve => setTimeout(() => { resolve('timeout') }, 30_000))
  ])
  t.not(stop, 'timeout', 'exits within 30 s of SIGTERM')
  if (stop !== 'timeout') {
    t.equal(stop, 0, `exit code 0 after SIGTERM (signal ${String(first.exitSignal())}); output:\n${stop === 0 ? '' : first.output().slice(-2000)}`)
  }

  // ---- second run on the same DATA_DIR
  const second = await startServer(t, dataDir)
  t.teardown(() => { if (t.passing() === false) t.comment(`second server output:\n${second.output().slice(-4000)}`) })

  const me = await request(second.base, 'GET', '/v1/me', { token })
  t.equal(me.statusCode, 200, 'an access token from the first run still verifies (secret kept)')

  const login = await request(second.base, 'POST', '/v1/auth/login', { payload: { email, password } })
  t.equal(login.statusCode, 200, `login after restart: ${login.body.slice(0, 300)}`)
  if (login.statusCode !== 200) return
  const token2 = login.json<AuthResult>().accessToken
  t.equal(login.json<AuthResult>().user.id, user.id, 'same user')

  const after = await request(second.base, 'GET', `${files}/docs/caf%C3%A9.txt`, { token: token2 })
  t.equal(after.statusCode, 200, `read the moved file after restart: ${after.body.slice(0, 300)}`)
  const afterBody = after.json<FileBody>()
  t.equal(afterBody.content, content2, 'same content')
  t.equal(afterBody.etag, beforeBody.etag, 'same etag')
  t.equal(afterBody.version, beforeBody.version, 'same version')
  t.equal(afterBody.sha256, beforeBody.sha256, 'same sha256')

  const wsAfter = await request(second.base, 'GET', `/v1/workspaces/${ws}`, { token: token2 })
  t.equal(wsAfter.statusCode, 200)
  t.equal(wsAfter.json<Workspace>().revision, 3, 'same workspace revision')

  const feedAfter = await request(second.base, 'GET', `/v1/workspaces/${ws}/changes?since=0`, { token: token2 })
  t.equal(feedAfter.statusCode, 200)
  t.same(feedAfter.json<ChangesResult>().changes.map(c => c.revision), [1, 2, 3], 'the change feed survived')

  const oldPath = await request(second.base, 'GET', `${files}/notes/hello.txt`, { token: token2 })
  t.equal(oldPath.statusCode, 404, 'the old path is still gone')

  // the next write continues the revision sequence
  const put3 = await request(second.base, 'PUT', `${files}/docs/café.txt`, { token: token2, payload: { content: 'third' }, headers: { 'if-match': `"${afterBody.etag}"` } })
  t.equal(put3.statusCode, 200, `write after restart: ${put3.body.slice(0, 300)}`)
  t.equal(put3.json<WriteResult>().revision, 4, 'revision 4 after restart')

  second.kill('SIGTERM')
  const stop2 = await Promise.race([first.exited.then(() => second.exited), new Promise<'timeout'>(resolve => setTimeout(() => { resolve('timeout') }, 30_000))])
  t.not(stop2, 'timeout', 'second server stops too')
  if (stop2 !== 'timeout') t.equal(stop2, 0, 'second exit code 0')
})
