import autocannon from 'autocannon'
import { cpuMeter, latency, round, selfCpuMeter, type Latency } from './util.js'

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
