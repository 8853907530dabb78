import t from 'tap'
import { build, registerUser } from './helper.js'

const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

t.test('past the heap bound: 503 UNAVAILABLE with Retry-After, /health and /metrics still answer', async t => {
  const app = await build(t, { OVERLOAD_MAX_HEAP_USED_BYTES: '1', OVERLOAD_SAMPLE_INTERVAL_MS: '20', OVERLOAD_RETRY_AFTER_S: '7' })
  await sleep(100)
  for (const url of ['/v1/me', '/ready', '/nowhere']) {
    const res = await app.inject({ url })
    t.equal(res.statusCode, 503, url)
    t.match(res.json(), { statusCode: 503, code: 'UNAVAILABLE', error: 'Service Unavailable', message: /overloaded/ })
    t.equal(res.headers['retry-after'], '7')
  }
  t.equal((await app.inject({ url: '/health' })).statusCode, 200)
  const metrics = await app.inject({ url: '/metrics' })
  t.equal(metrics.statusCode, 200)
  t.match(metrics.body, /^http_request_duration_seconds_count\{method="GET",route="\/v1\/me",status_code="503"\} 1$/m)
})

t.test('a blocked event loop sheds load until it recovers', async t => {
  const app = await build(t, { OVERLOAD_MAX_EVENT_LOOP_DELAY_MS: '100', OVERLOAD_SAMPLE_INTERVAL_MS: '200' })
  const user = await registerUser(app)
  t.equal((await app.inject({ url: '/v1/me', headers: user.auth })).statusCode, 200)
  const until = Date.now() + 1_000
  while (Date.now() < until) { /* block the event loop */ }
  await sleep(10)
  let shed = 0
  for (let i = 0; i < 5; i++) if ((await app.inject({ url: '/v1/me', headers: user.auth })).statusCode === 503) shed++
  t.ok(shed > 0, `${shed} of 5 requests shed right after the block`)
  await sleep(600)
  t.equal((await app.inject({ url: '/v1/me', headers: user.auth })).statusCode, 200, 'served again once the loop is responsive')
})
