import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import WebSocket from 'ws'
import type autocannon from 'autocannon'
import { runHttp, type HttpLoad, type HttpRun } from './lib/http-load.js'
import { keepAlive, putFiles, runFanout, Subscribers, type FanoutRun } from './lib/ws-load.js'
import { api, batch, createWorkspace, kib, login, register, treeOps, type User } from './lib/seed.js'
import { freePort, median, PIN, pinSelf, ROOT, round, rssBytes, serverCommand, sleep, startProcess, LOADER_CPU, SERVER_CPU, type Proc } from './lib/util.js'

/**
 * `npm run bench` / `npm run bench:ci`: starts the server on real PostgreSQL and Redis, seeds a
 * workspace through its API, runs every scenario of bench/README.md beside its baseline (same
 * run, same machine, same core), prints one Markdown table and writes it as JSON to
 * bench/results/. Exits 1 when any scenario saw a transport error, a lost event or a non-2xx
 * answer; never because of a timing.
 *
 * Flags: --ci (short), --profile (server started with --cpu-prof, profiles in
 * bench/results/profiles), --only=1,3,6 (a subset of scenarios; 8 needs 6).
 */

const argv = process.argv.slice(2)
const CI = argv.includes('--ci')
const PROFILE = argv.includes('--profile')
const only = argv.find(a => a.startsWith('--only='))?.slice(7).split(',')
const wanted = (n: string): boolean => only === undefined || only.includes(n)

const cfg = CI
  ? { rounds: 1, warm: 1, seconds: 3, latSeconds: 3, satSeconds: 3, stallMs: 5_000 }
  : { rounds: 2, warm: 2, seconds: 8, latSeconds: 10, satSeconds: 6, stallMs: 10_000 }
/**
 * Fan-out rates: writes (= events) per second. Latency phases run well below capacity; the
 * saturation phase above the bare ws server's (the server, writing a commit's frames to each
 * client at once, keeps up with it on this machine, so its rate there is a lower bound).
 */
const RATE_100 = 50
const RATE_1000 = 20
/** The saturation phase sends batches of BATCH_SAT creates, RATE_SAT / BATCH_SAT per second: the fan-out saturates, not the write path. */
const RATE_SAT = 250
const BATCH_SAT = 10
const PG_ADMIN = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379'

interface Baseline { name: string, rate: number | null, p99: number | null }
interface Row {
  id: string
  scenario: string
  unit: string
  rate: number | null
  p50: number | null
  p95: number | null
  p99: number | null
  errors: number
  non2xx: number
  baseline: Baseline | null
  /** project ÷ baseline (throughput; for memory rows, RSS) */
  ratio: number | null
  target: string
  met: boolean | null
  detail: Record<string, unknown>
}

const rows: Row[] = []
const loadAtStart = loadavg().map(x => round(x, 2))
const procs = new Set<Proc>()
let dbName = ''

function log (message: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`)
}

async function adminQuery (sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: PG_ADMIN })
  await client.connect()
  try {
    await client.query(sql)
  } finally {
    await client.end()
  }
}

async function start (name: string, nodeArgs: string[], env: Record<string, string>, readyPath: string): Promise<Proc> {
  const proc = await startProcess(name, nodeArgs, env, await freePort(), readyPath)
  procs.add(proc)
  return proc
}

async function stop (proc: Proc): Promise<void> {
  await proc.stop()
  procs.delete(proc)
}

// ---------------------------------------------------------------- HTTP scenarios

interface Side {
  label: string
  proc: Proc
  load: (seconds: number) => HttpLoad
  /** before every run (e.g. re-read etags: a run's last requests are cut off unanswered) */
  prepare?: () => Promise<void>
}

/**
 * The project and its baseline, alternating (ABBA…) for `rounds` rounds, each run after a
 * warm-up. Rates and latencies are medians over rounds; the ratio is the median of per-round ratios.
 */
async function httpPair (id: string, scenario: string, unit: string, project: Side, baseline: Side, target: { min: number } | null): Promise<void> {
  const runs: Record<'p' | 'b', HttpRun[]> = { p: [], b: [] }
  let errors = 0
  let non2xx = 0
  for (let r = 0; r < cfg.rounds; r++) {
    const order: Array<['p' | 'b', Side]> = r % 2 === 0 ? [['p', project], ['b', baseline]] : [['b', baseline], ['p', project]]
    for (const [key, side] of order) {
      await side.prepare?.()
      const warm = await runHttp(side.load(cfg.warm))
      await side.prepare?.()
      const run = await runHttp(side.load(cfg.seconds))
      errors += warm.errors + run.errors
      non2xx += warm.non2xx + run.non2xx
      runs[key].push(run)
      log(`${id} ${side.label}: ${run.rate} ${unit}, p99 ${run.p99} ms, server CPU ${run.serverCpuPct}%, loader CPU ${run.loaderCpuPct}%, errors ${run.errors}, non-2xx ${run.non2xx}`)
    }
  }
  const m = (side: 'p' | 'b', k: 'rate' | 'p50' | 'p95' | 'p99'): number => round(median(runs[side].map(x => x[k])), k === 'rate' ? 0 : 2)
  const ratios = runs.p.map((x, i) => x.rate / (runs.b[i]?.rate ?? Number.NaN))
  const ratio = round(median(ratios), 2)
  rows.push({
    id,
    scenario,
    unit,
    rate: m('p', 'rate'),
    p50: m('p', 'p50'),
    p95: m('p', 'p95'),
    p99: m('p', 'p99'),
    errors,
    non2xx,
    baseline: { name: baseline.label, rate: m('b', 'rate'), p99: m('b', 'p99') },
    ratio,
    target: target === null ? '—' : `≥ ${target.min}× baseline`,
    met: target === null ? null : ratio >= target.min,
    detail: { rounds: cfg.rounds, secondsPerRun: cfg.seconds, perRoundRatios: ratios.map(x => round(x, 3)), project: runs.p, baseline: runs.b }
  })
}

const get = (path: string, token?: string): () => autocannon.Request[] =>
  () => [{ method: 'GET', path, ...(token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } }) }]

/** PUT with If-Match: each of the `connections` clients owns two of the 100 paths and tracks their etags. */
function writeRequests (urlOf: (path: string) => string, headers: Record<string, string>, etags: Map<string, string>, paths: string[]): () => autocannon.Request[] {
  let next = 0
  let seq = 0
  return () => {
    const mine = [paths[(2 * next) % paths.length], paths[(2 * next + 1) % paths.length]].filter((p): p is string => p !== undefined)
    next++
    let turn = 0
    return [{
      method: 'PUT',
      setupRequest: req => {
        const path = mine[turn++ % mine.length] ?? ''
        return { ...req, path: urlOf(path), headers: { ...headers, 'content-type': 'application/json', 'if-match': `"${etags.get(path) ?? '0'}"` }, body: JSON.stringify({ content: kib(`w ${++seq}`) }) }
      },
      onResponse: (status, body) => {
        if (status !== 200) return
        const file = (JSON.parse(body) as { file: { path: string, etag: string } }).file
        etags.set(file.path, file.etag)
      }
    }]
  }
}

/** POST a batch of 100 creates, each at a new path with its own 1 KiB content. */
function batchRequests (path: string, headers: Record<string, string>, prefix: string): () => autocannon.Request[] {
  let client = 0
  return () => {
    const me = client++
    let n = 0
    return [{
      method: 'POST',
      setupRequest: req => {
        const dir = `/b/${prefix}-${me}-${n++}`
        const operations = Array.from({ length: 100 }, (_, i) => ({ type: 'create', path: `${dir}/f${i}.txt`, content: kib(`${dir} ${i}`) }))
        return { ...req, path, headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify({ operations }) }
      }
    }]
  }
}

function cycle (paths: string[], headers: Record<string, string>): () => autocannon.Request[] {
  let k = 0
  return () => [{ method: 'GET', setupRequest: req => ({ ...req, path: paths[k++ % paths.length] ?? '/', headers }) }]
}

// ---------------------------------------------------------------- fan-out scenarios

function fanRow (id: string, scenario: string, run: FanoutRun, base: FanoutRun | null, target: { p99?: number, ratio?: number } | null): void {
  const ratio = base === null ? null : round(run.rate / base.rate, 2)
  let met: boolean | null = null
  let text = '—'
  if (target?.p99 !== undefined) {
    // The issue's latency target is commit to receipt (from the event's `data.at`, taken in the
    // transaction, so a little before the commit); the table's p50–p99 columns are the stricter
    // send to receipt, which includes the write's HTTP request and transaction.
    met = run.commitLatency.p99 < target.p99
    text = `commit→receipt p99 < ${target.p99} ms (${run.commitLatency.p99} ms)`
  } else if (target?.ratio !== undefined && ratio !== null) {
    met = ratio >= target.ratio
    text = `≥ ${target.ratio}× baseline`
  }
  rows.push({
    id,
    scenario,
    unit: 'deliveries/s',
    rate: run.rate,
    p50: run.latency.p50,
    p95: run.latency.p95,
    p99: run.latency.p99,
    errors: run.errors,
    non2xx: run.non2xx,
    baseline: base === null ? null : { name: 'bare ws broadcast', rate: base.rate, p99: base.latency.p99 },
    ratio,
    target: text,
    met,
    detail: { project: run, baseline: base }
  })
}

function memRow (id: string, scenario: string, rss: number, baseRss: number | null, targetMb: number | null, detail: Record<string, unknown> = {}): void {
  const mb = round(rss / 1048576, 1)
  rows.push({
    id,
    scenario,
    unit: 'MB RSS',
    rate: mb,
    p50: null,
    p95: null,
    p99: null,
    errors: 0,
    non2xx: 0,
    baseline: baseRss === null ? null : { name: 'bare ws server', rate: round(baseRss / 1048576, 1), p99: null },
    ratio: baseRss === null ? null : round(rss / baseRss, 2),
    target: targetMb === null ? '—' : `< ${targetMb} MB`,
    met: targetMb === null ? null : mb < targetMb,
    detail
  })
}

/** The same bytes as a real event frame, for another path (same length) and revision. */
function frameLike (template: string, path: string, revision: number): string {
  const frame = JSON.parse(template) as { revision: number, data: { revision: number, path: string, at: string } }
  frame.revision = revision
  frame.data.revision = revision
  frame.data.path = path
  frame.data.at = new Date().toISOString()
  return JSON.stringify(frame)
}

interface FanSet { r100: FanoutRun, r1000: FanoutRun, sat: FanoutRun, rssIdle: number, rss1000: number, rssAfter: number }

/**
 * One fan-out series: 100 subscribers at RATE_100, 900 more, 1,000 at RATE_1000, 1,000 at
 * RATE_SAT (above capacity: deliveries/s is then the sustained capacity). `connect(n, i)` adds
 * n subscribers (i: how many exist already); `fire` sends write/trigger for a path.
 */
async function fanSeries (label: string, rssPid: number, serverPids: number[], subs: Subscribers, connect: (n: number, have: number) => Promise<void>, fire: (paths: string[]) => Promise<number>): Promise<FanSet> {
  const phase = async (tag: string, count: number, events: number, seconds: number, eventsPerFire = 1): Promise<FanoutRun> => {
    const run = await runFanout({ subscribers: subs, count, rate: events / eventsPerFire, eventsPerFire, seconds, fire, tag, serverPids, stallMs: cfg.stallMs })
    log(`${label} ${tag}: ${count} subscribers at ${events} events/s: ${run.rate} deliveries/s, p50 ${run.latency.p50} p99 ${run.latency.p99} ms (commit→receipt p99 ${run.commitLatency.p99} ms), server CPU ${run.serverCpuPct}%, loader CPU ${run.loaderCpuPct}%, errors ${run.errors}, non-2xx ${run.non2xx}`)
    return run
  }
  await sleep(500)
  const rssIdle = rssBytes(rssPid)
  await connect(100, 0)
  await sleep(500)
  const r100 = await phase(`${label}-100`, 100, RATE_100, cfg.latSeconds)
  await connect(900, 100)
  await sleep(2000)
  const rss1000 = rssBytes(rssPid)
  const r1000 = await phase(`${label}-1000`, 1000, RATE_1000, cfg.latSeconds)
  const sat = await phase(`${label}-sat`, 1000, RATE_SAT, cfg.satSeconds, BATCH_SAT)
  await sleep(1000)
  const rssAfter = rssBytes(rssPid)
  subs.close()
  return { r100, r1000, sat, rssIdle, rss1000, rssAfter }
}

// ---------------------------------------------------------------- main

async function main (): Promise<void> {
  pinSelf()
  const started = new Date()
  const server = serverCommand()
  log(`mode ${CI ? 'ci' : 'full'}; server from ${server.kind}; ${PIN ? `server on CPU ${SERVER_CPU}, load generator on CPU ${LOADER_CPU}` : 'no pinning (needs 2 cores and taskset)'}`)
  // Ratios assume the two cores are ours: say so when other work is running.
  if ((loadAtStart[0] ?? 0) > 1) log(`warning: load average ${loadAtStart.join(' ')} before the run: other processes share the cores, figures will be noisy`)
  dbName = `wb_bench_${randomBytes(6).toString('hex')}`
  await adminQuery(`CREATE DATABASE ${dbName}`)
  const databaseUrl = PG_ADMIN.replace(/\/[^/]*$/, `/${dbName}`)
  const dataDir = mkdtempSync(join(tmpdir(), 'wb-bench-'))
  const profileDir = join(ROOT, 'bench/results/profiles')
  if (PROFILE) mkdirSync(profileDir, { recursive: true })
  const serverEnv = {
    NODE_ENV: 'production',
    LOG_LEVEL: 'warn',
    DATABASE_URL: databaseUrl,
    REDIS_URL,
    JWT_SECRET: randomBytes(48).toString('base64url'),
    DATA_DIR: dataDir,
    RATE_LIMIT_ENABLED: 'false',
    // Load shedding off (0 turns the check off), as rate limits are: the saturation phases measure
    // capacity, and a shed request would be a non-2xx answer.
    OVERLOAD_MAX_EVENT_LOOP_DELAY_MS: '0'
  }
  const nodeArgs = [...(PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []), ...server.args]
  try {
    let A = await start('server A', nodeArgs, serverEnv, '/ready')

    // Seed: one user, a workspace per scenario (and one per writing baseline), all through the API.
    log('seeding')
    const user: User = await register(A.base)
    let token = user.token
    const ws: Record<string, string> = {}
    for (const name of ['read', 'write', 'writeBase', 'batch', 'batchBase', 'tree', 'fan']) ws[name] = await createWorkspace(A.base, token, `bench-${name}`)
    const wsId = (name: string): string => ws[name] ?? ''
    await api(A.base, 'PUT', `/v1/workspaces/${wsId('read')}/files/bench/read.txt`, token, { content: kib('read') }, 201)
    const entry = await api<Record<string, unknown>>(A.base, 'GET', `/v1/workspaces/${wsId('read')}/files/bench/read.txt`, token, undefined, 200)
    const writePaths = Array.from({ length: 100 }, (_, i) => `/w/p${String(i).padStart(3, '0')}.txt`)
    const writeOps = writePaths.map(path => ({ type: 'create' as const, path, content: kib(path) }))
    const etags = await batch(A.base, token, wsId('write'), writeOps)
    const baseEtags = await batch(A.base, token, wsId('writeBase'), writeOps)
    await batch(A.base, token, wsId('tree'), treeOps())
    const treeBase = `/v1/workspaces/${wsId('tree')}/tree?path=%2F&depth=0&limit=1000`
    const cursors: string[] = ['']
    for (;;) {
      const last = cursors.at(-1) ?? ''
      const page = await api<{ entries: unknown[], nextCursor: string | null }>(A.base, 'GET', treeBase + (last === '' ? '' : `&cursor=${last}`), token, undefined, 200)
      if (page.entries.length !== 1000) throw new Error(`tree page of ${page.entries.length} entries, expected 1000`)
      if (page.nextCursor === null) break
      cursors.push(page.nextCursor)
    }
    if (cursors.length !== 10) throw new Error(`tree has ${cursors.length} pages, expected 10`)
    log(`seeded: 1 read file, 2 × 100 write files, a 10,000-entry tree (${cursors.length} pages of 1,000)`)

    const entryFile = join(dataDir, 'entry.json')
    writeFileSync(entryFile, JSON.stringify(entry))
    const B = await start('http baseline', [...(PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, '--cpu-prof-name=baseline-http.cpuprofile'] : []), '--import', 'tsx', join(ROOT, 'bench/baseline-http.ts')],
      { DATABASE_URL: databaseUrl, USER_ID: user.id, SESSION_ID: user.sessionId, ENTRY_FILE: entryFile }, '/health')
    const bare = (label: string, load: (seconds: number) => HttpLoad): Side => ({ label, proc: B, load })
    const conns = 50

    if (wanted('1')) {
      token = await login(A.base, user)
      const path = `/v1/workspaces/${wsId('read')}/files/bench/read.txt`
      await httpPair('1', 'read 1 KiB file, cache hit', 'req/s',
        { label: 'project', proc: A, load: s => ({ url: A.base, connections: conns, seconds: s, serverPid: A.pid, requests: get(path, token) }) },
        bare('bare Fastify, same JSON + schema', s => ({ url: B.base, connections: conns, seconds: s, serverPid: B.pid, requests: get('/s1') })),
        { min: 0.8 })
    }
    if (wanted('2')) {
      token = await login(A.base, user)
      // In-process cache off, and its Redis layer too, so that every read runs the SQL the baseline runs.
      const C = await start('server, cache off', nodeArgs, { ...serverEnv, CACHE_MAX_BYTES: '0', CACHE_REDIS: 'false' }, '/ready')
      const path = `/v1/workspaces/${wsId('read')}/files/bench/read.txt`
      await httpPair('2', 'read 1 KiB file, cache off', 'req/s',
        { label: 'project', proc: C, load: s => ({ url: C.base, connections: conns, seconds: s, serverPid: C.pid, requests: get(path, token) }) },
        bare('bare Fastify + raw pg, same SQL', s => ({ url: B.base, connections: conns, seconds: s, serverPid: B.pid, requests: get(`/s2/${wsId('read')}/bench/read.txt`) })),
        { min: 0.7 })
      await stop(C)
    }
    if (wanted('3')) {
      token = await login(A.base, user)
      const auth = { authorization: `Bearer ${token}` }
      // The current etags, as the tree lists them: an autocannon run ends with requests in flight
      // whose answers (and new etags) it never reads.
      // Those requests still commit after the run: read until two reads 300 ms apart agree.
      const resync = (workspace: string, into: Map<string, string>) => async (): Promise<void> => {
        const read = async (): Promise<string> => {
          const page = await api<{ entries: Array<{ path: string, etag: string }> }>(A.base, 'GET', `/v1/workspaces/${wsId(workspace)}/tree?path=%2Fw&depth=1&limit=1000`, token, undefined, 200)
          for (const e of page.entries) into.set(e.path, e.etag)
          return page.entries.map(e => e.etag).join(',')
        }
        let before = await read()
        for (let i = 0; i < 50; i++) {
          await sleep(300)
          const now = await read()
          if (now === before) return
          before = now
        }
        throw new Error(`${workspace}: etags still changing 15 s after the run`)
      }
      await httpPair('3', 'write 1 KiB, If-Match, 100 paths, 50 conns', 'req/s',
        { label: 'project', proc: A, prepare: resync('write', etags), load: s => ({ url: A.base, connections: conns, seconds: s, serverPid: A.pid, requests: writeRequests(p => `/v1/workspaces/${wsId('write')}/files${p}`, auth, etags, writePaths) }) },
        { ...bare('bare Fastify + raw pg, same transaction', s => ({ url: B.base, connections: conns, seconds: s, serverPid: B.pid, requests: writeRequests(p => `/s3/${wsId('writeBase')}${p}`, {}, baseEtags, writePaths) })), prepare: resync('writeBase', baseEtags) },
        { min: 0.7 })
    }
    if (wanted('4')) {
      token = await login(A.base, user)
      let run = 0
      await httpPair('4', 'batch of 100 creates, 8 conns', 'files/s',
        { label: 'project', proc: A, load: s => ({ url: A.base, connections: 8, seconds: s, serverPid: A.pid, unitsPerRequest: 100, requests: batchRequests(`/v1/workspaces/${wsId('batch')}/operations/batch`, { authorization: `Bearer ${token}` }, `p${run++}`) }) },
        bare('bare Fastify + raw pg, same statements', s => ({ url: B.base, connections: 8, seconds: s, serverPid: B.pid, unitsPerRequest: 100, requests: batchRequests(`/s4/${wsId('batchBase')}`, {}, `b${run++}`) })),
        null)
    }
    if (wanted('5')) {
      token = await login(A.base, user)
      await httpPair('5', 'tree of 10,000 entries, pages of 1,000, 10 conns', 'req/s',
        { label: 'project', proc: A, load: s => ({ url: A.base, connections: 10, seconds: s, serverPid: A.pid, requests: cycle(cursors.map(c => treeBase + (c === '' ? '' : `&cursor=${c}`)), { authorization: `Bearer ${token}` }) }) },
        bare('bare Fastify + raw pg, same SQL', s => ({ url: B.base, connections: 10, seconds: s, serverPid: B.pid, requests: cycle(cursors.map(c => `/s5/${wsId('tree')}?limit=1000` + (c === '' ? '' : `&cursor=${c}`)), {}) })),
        null)
    }
    await stop(B)

    if (wanted('6') || wanted('7') || wanted('8')) {
      // A fresh instance: memory then measures sockets and fan-out, not the heap that the HTTP
      // scenarios grew (V8 keeps it).
      await stop(A)
      A = await start('server A (fresh)', nodeArgs, serverEnv, '/ready')
      await sleep(1000)
      const rssFresh = rssBytes(A.pid)
      token = await login(A.base, user)
      const agent = keepAlive()
      const target = { base: A.base, token, workspaceId: wsId('fan'), content: kib('fan').slice(0, 1000) }
      const wsUrl = (base: string): string => `${base.replace(/^http/, 'ws')}/v1/ws`
      const subs = new Subscribers()
      const sub = { token, workspaceId: wsId('fan') }
      log('fan-out through the server: 1 instance')
      const one = await fanSeries('s6', A.pid, [A.pid], subs, async n => { await subs.connect(wsUrl(A.base), n, sub) }, async paths => await putFiles(agent, target, paths))
      const template = subs.lastFrame
      if (template === '') throw new Error('no event frame was received')

      log('fan-out through a bare ws server')
      const W = await start('ws baseline', ['--import', 'tsx', join(ROOT, 'bench/baseline-ws.ts')], {}, '/health')
      const control = new WebSocket(`${W.base.replace(/^http/, 'ws')}/control`, { perMessageDeflate: false })
      await new Promise<void>((resolve, reject) => { control.once('open', resolve); control.once('error', reject) })
      let revision = 1_000_000
      const base = await fanSeries('ws', W.pid, [W.pid], subs, async n => { await subs.connect(W.base.replace(/^http/, 'ws') + '/', n, {}) }, async paths => {
        for (const path of paths) control.send(frameLike(template, path, ++revision))
        return 200
      })
      control.terminate()
      await stop(W)

      if (wanted('6')) {
        fanRow('6a', `fan-out, 100 subscribers, ${RATE_100} writes/s`, one.r100, base.r100, { p99: 10 })
        fanRow('6b', `fan-out, 1,000 subscribers, ${RATE_1000} writes/s`, one.r1000, base.r1000, { p99: 25 })
        fanRow('6c', `fan-out, 1,000 subscribers, ${RATE_SAT} events/s offered (${RATE_SAT / BATCH_SAT} batches of ${BATCH_SAT}/s; above the bare ws server's capacity)`, one.sat, base.sat, { ratio: 0.8 })
      }
      if (wanted('8')) {
        memRow('8a', 'RSS idle (fresh instance)', rssFresh, base.rssIdle, null, { beforeSubscribers: one.rssIdle })
        memRow('8b', 'RSS with 1,000 idle sockets', one.rss1000, base.rss1000, 150)
        memRow('8c', 'RSS after scenario 6', one.rssAfter, base.rssAfter, null)
      }

      if (wanted('7')) {
        log('fan-out through the server: 2 instances, half the subscribers on each, writes to the first')
        token = await login(A.base, user)
        const A2 = await start('server A2', nodeArgs, serverEnv, '/ready')
        const sub2 = { token, workspaceId: wsId('fan') }
        const two = await fanSeries('s7', A2.pid, [A.pid, A2.pid], subs, async n => {
          await subs.connect(wsUrl(A.base), n / 2, sub2)
          await subs.connect(wsUrl(A2.base), n / 2, sub2)
        }, async paths => await putFiles(agent, { ...target, token }, paths))
        await stop(A2)
        fanRow('7a', `fan-out via Redis, 2 instances, 100 subscribers, ${RATE_100} writes/s`, two.r100, base.r100, null)
        fanRow('7b', `fan-out via Redis, 2 instances, 1,000 subscribers, ${RATE_1000} writes/s`, two.r1000, base.r1000, null)
        fanRow('7c', `fan-out via Redis, 2 instances, 1,000 subscribers, ${RATE_SAT} events/s offered`, two.sat, base.sat, null)
      }
      agent.destroy()
    }
    await stop(A)
  } finally {
    for (const p of procs) await p.stop()
    await adminQuery(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`).catch(err => { log(`could not drop ${dbName}: ${String(err)}`) })
    rmSync(dataDir, { recursive: true, force: true })
  }
  report(started, server.kind)
}

// ---------------------------------------------------------------- report

const fmt = (x: number | null, digits = 0): string => x === null ? '—' : x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })

function machine (): Record<string, unknown> {
  let kernel = ''
  try {
    kernel = readFileSync('/proc/version', 'utf8').split(' ').slice(0, 3).join(' ')
  } catch {}
  return { nproc: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', memoryGiB: round(totalmem() / 2 ** 30, 1), node: process.version, kernel, pinned: PIN, loadAverageAtStart: loadAtStart, loadAverageAtEnd: loadavg().map(x => round(x, 2)) }
}

function table (): string {
  const lines = [
    '| # | scenario | rate | p50 ms | p95 ms | p99 ms | errors | non-2xx | baseline: rate (p99 ms) | ratio | target | met |',
    '|---|---|---:|---:|---:|---:|---:|---:|---|---:|---|---|'
  ]
  for (const r of rows) {
    const memory = r.unit === 'MB RSS'
    const rate = memory ? `${fmt(r.rate, 1)} MB` : `${fmt(r.rate)} ${r.unit}`
    const base = r.baseline === null ? '—' : memory ? `${fmt(r.baseline.rate, 1)} MB (${r.baseline.name})` : `${fmt(r.baseline.rate)} (${fmt(r.baseline.p99, 2)}) ${r.baseline.name}`
    lines.push(`| ${r.id} | ${r.scenario} | ${rate} | ${fmt(r.p50, 2)} | ${fmt(r.p95, 2)} | ${fmt(r.p99, 2)} | ${r.errors} | ${r.non2xx} | ${base} | ${r.ratio === null ? '—' : `${r.ratio.toFixed(2)}×`} | ${r.target} | ${r.met === null ? '—' : r.met ? 'yes' : '**no**'} |`)
  }
  return lines.join('\n')
}

function report (started: Date, serverKind: string): void {
  const markdown = table()
  process.stdout.write(`\n## Workbench API benchmarks (${CI ? 'ci' : 'full'} run, ${started.toISOString()}; load average ${loadAtStart.join(' ')} at start, ${loadavg().map(x => x.toFixed(2)).join(' ')} at end)\n\n${markdown}\n\n`)
  const failed = rows.filter(r => r.errors > 0 || r.non2xx > 0)
  const file = join(ROOT, 'bench/results', `bench-${CI ? 'ci' : 'full'}-${started.toISOString().replace(/[:.]/g, '-')}.json`)
  mkdirSync(join(ROOT, 'bench/results'), { recursive: true })
  writeFileSync(file, JSON.stringify({
    mode: CI ? 'ci' : 'full',
    startedAt: started.toISOString(),
    finishedAt: new Date().toISOString(),
    server: serverKind,
    machine: machine(),
    config: { ...cfg, fanoutEventsPerSecond: { subscribers100: RATE_100, subscribers1000: RATE_1000, saturation: RATE_SAT, saturationBatch: BATCH_SAT } },
    rows,
    markdown
  }, null, 2) + '\n')
  log(`results: ${file}`)
  if (failed.length > 0) {
    log(`FAILED: errors or non-2xx answers in scenario ${failed.map(r => r.id).join(', ')}`)
    process.exitCode = 1
  }
}

const cleanupOnSignal = (signal: NodeJS.Signals): void => {
  log(`${signal}: stopping`)
  void Promise.all([...procs].map(async p => { await p.stop() }))
    .then(async () => { if (dbName !== '') await adminQuery(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`) })
    .finally(() => process.exit(130))
}
process.once('SIGINT', cleanupOnSignal)
process.once('SIGTERM', cleanupOnSignal)

try {
  await main()
} catch (err) {
  log(`bench failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}`)
  process.exitCode = 1
}
