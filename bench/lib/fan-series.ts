import type { Agent } from 'node:http'
import { join } from 'node:path'
import WebSocket from 'ws'
import type { BenchContext, Settings } from './context.js'
import { kib } from './seed.js'
import { log, ROOT, rssBytes, sleep } from './util.js'
import { keepAlive, putFiles, runFanout, Subscribers, type FanoutRun, type WriteTarget } from './ws-load.js'

/** The fan-out series of scenarios 6, 7 and 8: phases of subscribers and writes, and their memory. */

/**
 * Fan-out rates: writes (= events) per second. Latency phases run well below capacity; the
 * saturation phase above the bare ws server's (the server, writing a commit's frames to each
 * client at once, keeps up with it on this machine, so its rate there is a lower bound).
 */
export const RATE_100 = 50
export const RATE_1000 = 20
/** The saturation phase sends batches of BATCH_SAT creates, RATE_SAT / BATCH_SAT per second: the fan-out saturates, not the write path. */
export const RATE_SAT = 250
export const BATCH_SAT = 10

export interface FanSet { r100: FanoutRun, r1000: FanoutRun, sat: FanoutRun, rssIdle: number, rss1000: number, rssAfter: number }

export interface Series {
  label: string
  /** the process whose memory is read */
  rssPid: number
  /** the processes whose CPU is measured */
  serverPids: number[]
  subs: Subscribers
  /** adds n subscribers */
  connect: (n: number) => Promise<void>
  /** sends the write (or the trigger) for these paths; resolves with an HTTP status */
  fire: (paths: string[]) => Promise<number>
}

/**
 * One fan-out series: 100 subscribers at RATE_100 (after a warm-up phase alike), 900 more,
 * 1,000 at RATE_1000, 1,000 at RATE_SAT (above capacity: deliveries/s is then the sustained
 * capacity).
 */
export async function fanSeries (settings: Settings, { label, rssPid, serverPids, subs, connect, fire }: Series): Promise<FanSet> {
  const phase = async (tag: string, count: number, events: number, seconds: number, eventsPerFire = 1): Promise<FanoutRun> => {
    const run = await runFanout({ subscribers: subs, count, rate: events / eventsPerFire, eventsPerFire, seconds, fire, tag, serverPids, stallMs: settings.stallMs })
    log(`${label} ${tag}: ${count} subscribers at ${events} events/s: ${run.rate} deliveries/s, p50 ${run.latency.p50} p99 ${run.latency.p99} ms (commit→receipt p99 ${run.commitLatency.p99} ms), server CPU ${run.serverCpuPct}%, loader CPU ${run.loaderCpuPct}%, errors ${run.errors}, non-2xx ${run.non2xx}`)
    return run
  }
  await sleep(500)
  const rssIdle = rssBytes(rssPid)
  await connect(100)
  await sleep(500)
  // Warm-up, not recorded: the same load as the first phase, so that phase measures a warm
  // server as every HTTP scenario does (a fresh instance's first writes run cold code and
  // prepare their statements on each pooled connection; 6a's p99 is set by its slowest 1 %).
  await phase(`${label}-warm`, 100, RATE_100, settings.latSeconds)
  const r100 = await phase(`${label}-100`, 100, RATE_100, settings.latSeconds)
  await connect(900)
  await sleep(2000)
  const rss1000 = rssBytes(rssPid)
  const r1000 = await phase(`${label}-1000`, 1000, RATE_1000, settings.latSeconds)
  const sat = await phase(`${label}-sat`, 1000, RATE_SAT, settings.satSeconds, BATCH_SAT)
  await sleep(1000)
  const rssAfter = rssBytes(rssPid)
  subs.close()
  return { r100, r1000, sat, rssIdle, rss1000, rssAfter }
}

/** What scenarios 6, 7 and 8 share: one series through a fresh instance, one through the bare ws server. */
export interface FanoutShared {
  /** RSS of the fresh instance a second after its start */
  rssFresh: number
  /** through the server, one instance */
  one: FanSet
  /** through the bare ws server */
  base: FanSet
  /** the writer's keep-alive agent, subscriber pool and write target, for scenario 7's series */
  agent: Agent
  subs: Subscribers
  target: WriteTarget
}

/** ws:// for an http:// base URL */
const wsOrigin = (base: string): string => base.replace(/^http/, 'ws')
export const wsUrl = (base: string): string => `${wsOrigin(base)}/v1/ws`

/**
 * A fresh instance (memory then measures sockets and fan-out, not the heap that the HTTP
 * scenarios grew: V8 keeps it), its series, then the bare ws server's series on frames copied
 * from the events the instance sent.
 */
export async function measureFanout (context: BenchContext): Promise<FanoutShared> {
  const { settings, seed } = context
  const A = await context.restartProject('server A (fresh)')
  await sleep(1000)
  const rssFresh = rssBytes(A.pid)
  const token = await context.token()
  const agent = keepAlive()
  const target = { base: A.base, token, workspaceId: seed.workspace('fan'), content: kib('fan').slice(0, 1000) }
  const subs = new Subscribers()
  const sub = { token, workspaceId: seed.workspace('fan') }
  log('fan-out through the server: 1 instance')
  const one = await fanSeries(settings, { label: 's6', rssPid: A.pid, serverPids: [A.pid], subs, connect: async n => { await subs.connect(wsUrl(A.base), n, sub) }, fire: async paths => await putFiles(agent, target, paths) })
  const template = subs.lastFrame
  if (template === '') throw new Error('no event frame was received')

  log('fan-out through a bare ws server')
  const W = await context.start('ws baseline', ['--import', 'tsx', join(ROOT, 'bench/baseline-ws.ts')], {}, '/health')
  const control = new WebSocket(`${wsOrigin(W.base)}/control`, { perMessageDeflate: false })
  await new Promise<void>((resolve, reject) => { control.once('open', resolve); control.once('error', reject) })
  let revision = 1_000_000
  const base = await fanSeries(settings, {
    label: 'ws',
    rssPid: W.pid,
    serverPids: [W.pid],
    subs,
    connect: async n => { await subs.connect(`${wsOrigin(W.base)}/`, n, {}) },
    fire: async paths => {
      for (const path of paths) control.send(frameLike(template, path, ++revision))
      return 200
    }
  })
  control.terminate()
  await context.stop(W)
  return { rssFresh, one, base, agent, subs, target }
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
