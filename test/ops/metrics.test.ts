import t from 'tap'
import { build, createWorkspace, listen, registerUser, sleep } from '../helpers/app.js'
import { connect } from '../helpers/ws.js'
import { parsePrometheus, scrape, value } from '../helpers/metrics.js'

t.test('the parser refuses what is not Prometheus text', async t => {
  t.throws(() => parsePrometheus('# TYPE x counter\nx{a=b} 1\n'))
  t.throws(() => parsePrometheus('y 1\n'))
  t.throws(() => parsePrometheus('# TYPE x counter\nx one\n'))
  t.throws(() => parsePrometheus('# TYPE x counter\nx 0x10\n'))
  t.same(parsePrometheus('# TYPE x gauge\nx Nan\nx +Inf\nx 1.5e3\n').get('x')?.samples.map(s => s.value), [NaN, Infinity, 1500])
  t.same(parsePrometheus('# HELP x a "help"\n# TYPE x counter\nx{a="b\\"c",d="e"} 2\n').get('x')?.samples, [{ name: 'x', labels: { a: 'b"c', d: 'e' }, value: 2 }])
})

t.test('/metrics: request histograms move with the traffic, labelled by route pattern', async t => {
  const app = await build(t)
  const user = await registerUser(app)
  const ws = await createWorkspace(app, user)
  const route = '/v1/workspaces/:id'
  const labels = { method: 'GET', route, status_code: '200' }

  const before = await scrape(app)
  for (let i = 0; i < 5; i++) {
    const res = await app.inject({ url: `/v1/workspaces/${ws}`, headers: user.auth })
    t.equal(res.statusCode, 200)
  }
  const missing = await app.inject({ url: `/v1/workspaces/${ws}/no-such-route/${ws}` })
  t.equal(missing.statusCode, 404)
  const unauthenticated = await app.inject({ url: `/v1/workspaces/${ws}` })
  t.equal(unauthenticated.statusCode, 401)
  const after = await scrape(app)

  const histogram = after.get('http_request_duration_seconds')
  t.equal(histogram?.type, 'histogram')
  t.equal(value(after, 'http_request_duration_seconds_count', labels) - value(before, 'http_request_duration_seconds_count', labels), 5, 'five GETs counted')
  t.equal(value(after, 'http_request_duration_seconds_bucket', { ...labels, le: '+Inf' }), value(after, 'http_request_duration_seconds_count', labels), '+Inf bucket equals the count')
  t.ok(value(after, 'http_request_duration_seconds_sum', labels) > 0, 'durations summed')
  t.equal(value(after, 'http_request_duration_seconds_count', { method: 'GET', route, status_code: '401' }), 1, 'the 401 under the same pattern')
  t.equal(value(after, 'http_request_duration_seconds_count', { method: 'GET', route: '__unmatched__', status_code: '404' }), 1, 'an unmatched URL under a fixed label')
  t.equal(value(after, 'http_request_duration_seconds_count', { method: 'POST', route: '/v1/workspaces', status_code: '201' }), 1)
  const routes = new Set(histogram?.samples.map(s => s.labels.route))
  t.notOk([...routes].some(r => r?.includes(ws)), 'no raw path (workspace id) in any route label')

  // Default process metrics, database pool, cache and rate-limit families are all there.
  t.ok(value(after, 'process_cpu_user_seconds_total') > 0)
  t.ok(value(after, 'nodejs_heap_size_used_bytes') > 0)
  t.ok(value(after, 'workbench_db_pool_connections', { state: 'total' }) >= 1, 'pool has a connection')
  t.ok(after.has('workbench_db_pool_waiting_requests'))
  t.ok(after.has('workbench_event_delivery_lag_seconds'))
  t.ok(after.has('workbench_rate_limited_total'))

  // The read cache counts through the decorated counters.
  app.metrics.cacheHits.inc({ layer: 'memory' }, 3)
  app.metrics.cacheMisses.inc()
  const cache = await scrape(app)
  t.equal(value(cache, 'workbench_cache_hits_total', { layer: 'memory' }), 3)
  t.equal(value(cache, 'workbench_cache_misses_total'), 1)
})

t.test('/metrics: WebSocket connections, messages and event delivery lag', async t => {
  const app = await build(t)
  const url = await listen(app)
  const user = await registerUser(app)
  const ws = await createWorkspace(app, user)
  const base = await scrape(app)
  t.equal(value(base, 'workbench_ws_connections'), 0)

  // resolves once `connected` arrived
  const socket = await connect(t, url, { token: user.token })
  await socket.request({ type: 'subscribe', channel: `workspace:${ws}` }, ['subscribed'])
  await socket.request({ type: 'ping' }, ['pong'])

  const put = await app.inject({ method: 'PUT', url: `/v1/workspaces/${ws}/files/a.txt`, headers: user.auth, payload: { content: 'a' } })
  t.equal(put.statusCode, 201, put.body)
  await socket.next(m => m.type === 'event', 'event')

  const open = await scrape(app)
  t.equal(value(open, 'workbench_ws_connections'), 1, 'one socket open')
  t.equal(value(open, 'workbench_ws_messages_total', { direction: 'in' }) - value(base, 'workbench_ws_messages_total', { direction: 'in' }), 2, 'subscribe and ping received')
  t.equal(value(open, 'workbench_ws_messages_total', { direction: 'out' }) - value(base, 'workbench_ws_messages_total', { direction: 'out' }), socket.messages.length, 'every frame sent counted')
  t.equal(value(open, 'workbench_event_delivery_lag_seconds_count'), 1, 'one live delivery')
  t.ok(value(open, 'workbench_event_delivery_lag_seconds_sum') < 5, 'lag in seconds, small')

  socket.close()
  for (let i = 0; i < 50 && value(await scrape(app), 'workbench_ws_connections') > 0; i++) await sleep(20)
  t.equal(value(await scrape(app), 'workbench_ws_connections'), 0, 'closed socket no longer counted')
})
