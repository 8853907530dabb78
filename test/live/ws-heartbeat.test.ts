import t from 'tap'
import { build, listen, registerUser, sleep } from '../helpers/app.js'
import { connect } from '../helpers/ws.js'

t.test('a client that misses a pong is dropped; one that answers stays', async t => {
  const app = await build(t, { WS_HEARTBEAT_MS: '200' })
  const base = await listen(app)
  const user = await registerUser(app)
  const silent = await connect(t, base, { token: user.token, autoPong: false })
  const alive = await connect(t, base, { token: user.token })
  const started = Date.now()
  const closed = await Promise.race([silent.closed, sleep(3_000).then(() => undefined)])
  t.ok(closed !== undefined, `the silent client was dropped after ${Date.now() - started} ms`)
  t.ok(Date.now() - started < 1_500, 'within a few heartbeats')
  await sleep(600)
  t.notOk(alive.isClosed, 'the client that answers pings is still connected')
  const pong = await alive.request({ type: 'ping' }, ['pong'])
  t.equal(pong.type, 'pong')
})
