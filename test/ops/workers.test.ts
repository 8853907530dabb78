import { randomBytes } from 'node:crypto'
import pg from 'pg'
import t from 'tap'
import { createTestDatabase, PASSWORD, REDIS_URL, sleep, spawnServer, TEST_SECRET } from '../helpers/app.js'
import { request, type AuthResult } from '../helpers/http.js'

t.test('WORKERS=2: two processes answer on one port, SIGTERM stops them all with exit 0', async t => {
  const adminEmail = `ops-${randomBytes(4).toString('hex')}@example.com`
  const databaseUrl = await createTestDatabase(t)
  const server = await spawnServer(t, {
    env: { WORKERS: '2', DATABASE_URL: databaseUrl, REDIS_URL, JWT_SECRET: TEST_SECRET },
    wait: false
  })
  const base = server.base
  // (three processes each load the app through the test loader: under a full parallel run that took over 30 s)
  t.ok(await server.ready(90_000), `the cluster answers /health\n${server.output()}`)

  const register = await request(base, 'POST', '/v1/auth/register', { payload: { email: adminEmail, password: PASSWORD } })
  t.equal(register.statusCode, 201)
  const { accessToken } = register.json<AuthResult>()
  // What `npm run admin -- grant <email>` does; /v1/stats reads it on every call.
  const db = new pg.Client({ connectionString: databaseUrl })
  await db.connect()
  try {
    await db.query("UPDATE users SET permissions = array_append(permissions, 'admin') WHERE email = $1", [adminEmail])
  } finally {
    await db.end()
  }

  // Each new connection goes to the next listening worker (node:cluster hands them out
  // round-robin); /health answered once the first one listened, so the second may still start.
  const pids = new Set<number>()
  const served = new Map<number, number>()
  const stats = async (): Promise<number | undefined> => {
    // (bounded: a connection handed to the worker just SIGKILLed can be lost, never answered)
    const res = await fetch(`${base}/v1/stats`, { headers: { authorization: `Bearer ${accessToken}`, connection: 'close' }, signal: AbortSignal.timeout(5_000) }).catch(() => null)
    if (res?.status !== 200) return undefined
    const { instance } = await res.json() as { instance: { pid: number, worker: boolean } }
    t.equal(instance.worker, true)
    served.set(instance.pid, (served.get(instance.pid) ?? 0) + 1)
    return instance.pid
  }
  for (let i = 0; i < 150 && pids.size < 2; i++) {
    const pid = await stats()
    t.not(pid, undefined, '/v1/stats answers 200')
    if (pid !== undefined) pids.add(pid)
    if (pids.size < 2) await sleep(100)
  }
  t.equal(pids.size, 2, `two worker pids answered: ${[...pids].join(', ')}`)
  t.notOk(pids.has(server.pid), 'the primary serves nothing itself')

  // A worker that dies is replaced: the port keeps answering, from a new process.
  const [victim] = [...pids]
  process.kill(victim ?? -1, 'SIGKILL')
  const after = new Set<number>()
  for (let i = 0; i < 150 && after.size < 2; i++) {
    const pid = await stats()
    if (pid !== undefined && pid !== victim) after.add(pid)
    if (after.size < 2) await sleep(100)
  }
  t.equal(after.size, 2, `two workers answer again: ${[...after].join(', ')}`)
  t.ok([...after].some(pid => !pids.has(pid)), 'a new process took the killed worker\'s place')
  t.match(server.output(), /worker exited; starting another/)

  // /metrics on any worker sums the registries of the workers alive now.
  const metrics = await (await fetch(`${base}/metrics`, { headers: { connection: 'close' } })).text()
  const statsCount = /^http_request_duration_seconds_count\{method="GET",route="\/v1\/stats",status_code="200"\} (\d+)$/m.exec(metrics)?.[1]
  const expected = [...after].reduce((sum, pid) => sum + (served.get(pid) ?? 0), 0)
  t.equal(Number(statsCount), expected, 'the /v1/stats calls of both live workers are summed')

  const started = Date.now()
  server.kill('SIGTERM')
  let timer: NodeJS.Timeout | undefined
  const code = await Promise.race([server.exited, new Promise<string>(resolve => { timer = setTimeout(resolve, 20_000, 'timeout') })])
  clearTimeout(timer)
  t.equal(code, 0, `exit code after SIGTERM\n${server.output()}`)
  t.ok(Date.now() - started < 15_000, `exited in ${Date.now() - started} ms`)
  for (const pid of [...pids, ...after]) {
    let alive = true
    try { process.kill(pid, 0) } catch { alive = false }
    t.notOk(alive, `worker ${pid} is gone`)
  }
})
