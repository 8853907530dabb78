import t from 'tap'
import type { ActivityPage } from '../helpers/http.js'
import { setup } from '../helpers/files.js'
import { listen } from '../helpers/app.js'
import { connect } from '../helpers/ws.js'

/**
 * A mutation refused by its schema is recorded in its session's activity with the operation type
 * as sent (docs/api.md, "Sessions and the activity log"). A type with NUL in it made that insert
 * fail (PostgreSQL refuses NUL in text), silently: the refusal was never recorded. Found by the
 * property-based suite (test/contract/openapi-fuzz.test.ts), which now watches these inserts.
 */

t.test('an operation whose type or path holds NUL is refused and still recorded, over REST and RPC', async t => {
  const c = await setup(t)
  const before = await c.revision()
  const failed: unknown[] = []
  const record = c.app.activity.record.bind(c.app.activity)
  c.app.activity.record = async (entry, onError) => { await record(entry, err => { failed.push(err); onError?.(err) }) }

  t.equal((await c.op({ type: 'create\u0000', path: '/a.txt' })).statusCode, 400)
  const client = await connect(t, await listen(c.app), { token: c.user.token })
  const rpc = await client.rpc('operations.apply', { workspaceId: c.ws, type: '\u0000', path: '/b.txt' })
  t.match(rpc, { type: 'rpc.error', error: { code: 'VALIDATION_FAILED' } })
  const del = await client.rpc('files.delete', { workspaceId: c.ws, path: '/c\u0000' })
  t.match(del, { type: 'rpc.error', error: { code: 'INVALID_PATH' } })

  const ops = async (): Promise<ActivityPage['items']> =>
    (await c.getUrl(`/v1/sessions/${c.user.sessionId}/activity`)).json<ActivityPage>().items.filter(e => e.type !== 'auth.register' && e.type !== 'ws.connect')
  for (let i = 0; i < 50 && (await ops()).length < 3; i++) await new Promise(resolve => setTimeout(resolve, 20))
  t.match(await ops(), [
    { op: 'create\ufffd', path: '/a.txt', status: 400, code: 'VALIDATION_FAILED' },
    { op: '\ufffd', path: '/b.txt', status: 400, code: 'VALIDATION_FAILED' },
    { type: 'file.delete', path: '/c\ufffd', status: 400, code: 'INVALID_PATH' }
  ], 'every refusal is recorded, NUL shown as U+FFFD')
  t.strictSame(failed, [], 'no activity insert failed')
  await c.unchanged(t, before)
})
