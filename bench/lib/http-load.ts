import autocannon from 'autocannon'
import type { BenchContext, Scenario, Settings } from './context.js'
import type { Row } from './rows.js'
import { cpuMeter, latency, log, median, round, selfCpuMeter, type Latency, type Proc } from './util.js'

/** Closed-loop HTTP load with autocannon; latencies are collected per response, exactly. */

export interface HttpRun extends Latency {
  /** requests (or `unitsPerRequest` × requests) per second */
  rate: number
  requests: number
  errors: number
  non2xx: number
  seconds: number
  serverCpuPct: number
  loaderCpuPct: number
}

export interface HttpLoad {
  url: string
  connections: number
  seconds: number
  /** every client's requests; called once per client so that it can keep state of its own */
  requests: () => autocannon.Request[]
  /** e.g. 100 files per batch request */
  unitsPerRequest?: number
  /** PID of the server process, for its CPU use */
  serverPid: number
}

export async function runHttp (load: HttpLoad): Promise<HttpRun> {
  const times = new Float64Array(2_000_000)
  let n = 0
  let non2xx = 0
  const serverCpu = cpuMeter(load.serverPid)
  const loaderCpu = selfCpuMeter()
  const t0 = performance.now()
  const instance = autocannon({
    url: load.url,
    connections: load.connections,
    pipelining: 1,
    duration: load.seconds,
    timeout: 30,
    setupClient: client => { client.setRequests(load.requests()) }
  })
  instance.on('response', (_client: unknown, status: number, _bytes: number, responseTime: number) => {
    if (n < times.length) times[n++] = responseTime
    if (status < 200 || status >= 300) non2xx++
  })
  const result = await instance
  const seconds = (performance.now() - t0) / 1000
  const requests = result.requests.total
  return {
    rate: round(requests * (load.unitsPerRequest ?? 1) / result.duration, 0),
    requests,
    errors: result.errors + result.timeouts,
    non2xx: Math.max(non2xx, result.non2xx),
    seconds: round(seconds, 1),
    serverCpuPct: serverCpu(),
    loaderCpuPct: loaderCpu(),
    ...latency(times, n)
  }
}

/** `seconds` of load on `proc` from `connections` clients. */
export function loadOn (proc: Proc, connections: number, seconds: number, requests: () => autocannon.Request[]): HttpLoad {
  return { url: proc.base, connections, seconds, serverPid: proc.pid, requests }
}

/** The same GET for every client, with a Bearer token when given. */
export const get = (path: string, token?: string): () => autocannon.Request[] =>
  () => [{ method: 'GET', path, ...(token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } }) }]

export interface Side {
  label: string
  /** a run's load; called once per run, so that a run's requests can differ from the last's */
  load: (seconds: number) => HttpLoad
  /** before every run (e.g. re-read etags: a run's last requests are cut off unanswered) */
  prepare?: () => Promise<void>
}

export interface Pair {
  id: string
  scenario: string
  unit: string
  project: Side
  baseline: Side
  target: { min: number } | null
}

/**
 * The project and its baseline, alternating (ABBA…) for `rounds` rounds, each run after a
 * warm-up (a longer one in the first round: `Settings.warmFirst`). Rates and latencies are medians over rounds; the ratio is the median of per-round ratios.
 */
export async function httpPair (settings: Settings, { id, scenario, unit, project, baseline, target }: Pair): Promise<Row> {
  const runs: Record<'p' | 'b', HttpRun[]> = { p: [], b: [] }
  let errors = 0
  let non2xx = 0
  for (let r = 0; r < settings.rounds; r++) {
    const order: Array<['p' | 'b', Side]> = r % 2 === 0 ? [['p', project], ['b', baseline]] : [['b', baseline], ['p', project]]
    for (const [key, side] of order) {
      await side.prepare?.()
      const warm = await runHttp(side.load(r === 0 ? settings.warmFirst : settings.warm))
      await side.prepare?.()
      const run = await runHttp(side.load(settings.seconds))
      errors += warm.errors + run.errors
      non2xx += warm.non2xx + run.non2xx
      runs[key].push(run)
      log(`${id} ${side.label}: ${run.rate} ${unit}, p99 ${run.p99} ms, server CPU ${run.serverCpuPct}%, loader CPU ${run.loaderCpuPct}%, errors ${run.errors}, non-2xx ${run.non2xx}`)
    }
  }
  const m = (side: 'p' | 'b', k: 'rate' | 'p50' | 'p95' | 'p99'): number => round(median(runs[side].map(x => x[k])), k === 'rate' ? 0 : 2)
  const ratios = runs.p.map((x, i) => x.rate / (runs.b[i]?.rate ?? Number.NaN))
  const ratio = round(median(ratios), 2)
  return {
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
    detail: { rounds: settings.rounds, secondsPerRun: settings.seconds, perRoundRatios: ratios.map(x => round(x, 3)), project: runs.p, baseline: runs.b }
  }
}

/** The processes and the token an HTTP scenario's pair runs with. */
export interface HttpSides {
  project: Proc
  baseline: Proc
  /** a fresh access token, taken just before the scenario */
  token: string
}

/**
 * An HTTP scenario: one row, the project beside the bare HTTP baseline. `pair` describes both
 * sides; `after` runs once both have been measured (e.g. stopping an extra instance, or reading
 * the server's metrics); what it returns is added to the row's detail.
 */
export function httpScenario (about: Omit<Scenario, 'kind' | 'run'>, pair: (sides: HttpSides, context: BenchContext) => Promise<Omit<Pair, 'id'> & { after?: () => Promise<Record<string, unknown> | undefined> }>): Scenario {
  return {
    ...about,
    kind: 'http',
    run: async function runHttpScenario (context) {
      const baseline = await context.httpBaseline()
      const token = await context.token()
      const { after, ...sides } = await pair({ project: context.project(), baseline, token }, context)
      const row = await httpPair(context.settings, { id: about.id, ...sides })
      Object.assign(row.detail, await after?.())
      return [row]
    }
  }
}

/** A histogram's count, sum and cumulative buckets in the server's Prometheus text (`GET /metrics`), summed over its label sets; zeros when absent. */
export async function histogramTotals (proc: Proc, name: string): Promise<{ count: number, sum: number, buckets: Record<string, number> }> {
  const text = await (await fetch(`${proc.base}/metrics`)).text()
  const totals = { count: 0, sum: 0, buckets: {} as Record<string, number> }
  for (const m of text.matchAll(new RegExp(`^${name}_(count|sum|bucket)(?:\\{([^}]*)\\})? (\\S+)$`, 'gm'))) {
    const value = Number(m[3])
    if (m[1] === 'count') totals.count += value
    else if (m[1] === 'sum') totals.sum += value
    else {
      const le = /le="([^"]+)"/.exec(m[2] ?? '')?.[1] ?? ''
      totals.buckets[le] = (totals.buckets[le] ?? 0) + value
    }
  }
  return totals
}
