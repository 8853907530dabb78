import t from 'tap'
import { Redis } from 'ioredis'
import { build, createTestDatabase, createWorkspace, dbClient, REDIS_URL, registerUser, sleep, untilLockWait } from '../helpers/app.js'
import { expectStatus, request, type WriteResult } from '../helpers/http.js'

/**
 * Shutdown with a mutation still running whose client the HTTP server does not wait for (here an
 * injected request, as a client that has gone): the mutation commits and its event is published
 * before the database and Redis close (plugins/app/service.ts `settleMutations`, src/live/hub.ts
 * `close`), so no instance's subscribers depend on the head check to learn of it.
 */

t.test('close waits for a running write: it commits, answers, and its event reaches Redis', async t => {
  const url = await createTestDatabase(t)
  const app = await build(t, { DATABASE_URL: url, REDIS_URL })
  const user = await registerUser(app)
  const workspaceId = await createWorkspace(app, user)

  const bus = new Redis(REDIS_URL)
  t.teardown(() => { bus.disconnect() })
  const published: string[] = []
  bus.on('message', (_channel: string, message: string) => { published.push(message) })
  await bus.subscribe(`wb:workspace:${workspaceId}`)

  // Another transaction holds the workspace's row lock: the write waits on it.
  const holder = await dbClient(t, url)
  await holder.query('BEGIN')
  await holder.query('SELECT 1 FROM workspaces WHERE id = $1 FOR UPDATE', [workspaceId])
  const write = request(app, 'PUT', `/v1/workspaces/${workspaceId}/files/late.txt`, { token: user.token, payload: { content: 'written while closing' } })
  await untilLockWait(holder)

  let closed = false
  const closing = app.close().then(() => { closed = true })
  await sleep(300)
  t.notOk(closed, 'close is still waiting for the write')
  await holder.query('COMMIT')

  const written = expectStatus<WriteResult>(await write, 201, 'the write that was running at close')
  await closing
  const { rows } = await holder.query<{ n: number }>('SELECT count(*)::int AS n FROM files WHERE workspace_id = $1 AND path = $2', [workspaceId, '/late.txt'])
  t.equal(rows[0]?.n, 1, 'committed')
  for (let i = 0; i < 100 && published.length === 0; i++) await sleep(20)
  const changes = published.map(m => JSON.parse(m) as { t: string, changes?: Array<{ revision: number, path: string }> }).filter(m => m.t === 'changes')
  t.same(changes.flatMap(m => m.changes ?? []).map(c => [c.revision, c.path]), [[written.revision, '/late.txt']], 'its change was published before Redis closed')
})
