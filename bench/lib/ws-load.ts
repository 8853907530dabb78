import { Agent, request } from 'node:http'
import WebSocket, { type RawData } from 'ws'
import { cpuMeter, latency, log, round, selfCpuMeter, sleep, type Latency } from './util.js'

/**
 * Fan-out load: many WebSocket subscribers in this process, and an open-loop writer that fires
 * writes on a fixed schedule (arrival i at t0 + i/rate, whatever the server's pace). Each write
 * names a unique path; the subscriber side maps the event's `data.path` back to the write's
 * scheduled send time, so the latency is send-to-receipt at every subscriber, free of
 * coordinated omission. The event's own `data.at` (the change's time, taken in its transaction)
 * gives a second, commit-to-receipt figure.
 */

export interface Subscription { token?: string, workspaceId?: string }

/** A pool of subscriber sockets that record every event frame they receive. */
export class Subscribers {
  readonly sockets: WebSocket[] = []
  /** path → scheduled send time (performance.now()) of the write or trigger that names it */
  readonly sendTimes = new Map<string, number>()
  #latency = new Float64Array(0)
  #atLatency = new Float64Array(0)
  received = 0
  unknown = 0
  unexpectedCloses = 0
  /** events that came at or below the revision their socket had already received (duplicates or reordered) */
  outOfOrder = 0
  #lastRevision = new WeakMap<WebSocket, number>()
  lastReceipt = 0
  /** the last event frame received, as a template for the baseline's frames */
  lastFrame = ''

  /** Starts recording, with room for `expected` deliveries. */
  reset (expected: number): void {
    this.#latency = new Float64Array(expected + 1000)
    this.#atLatency = new Float64Array(expected + 1000)
    this.received = 0
    this.unknown = 0
    this.outOfOrder = 0
    this.lastReceipt = 0
    this.sendTimes.clear()
  }

  #onEvent (ws: WebSocket, frame: string): void {
    const now = performance.now()
    const r = frame.indexOf('"revision":')
    if (r >= 0) {
      const revision = Number.parseInt(frame.slice(r + 11, r + 31), 10)
      if (revision <= (this.#lastRevision.get(ws) ?? 0) && this.outOfOrder++ === 0) log(`an event at or below its socket's last revision: ${frame.slice(0, 300)}`)
      this.#lastRevision.set(ws, revision)
    }
    const i = frame.indexOf('"path":"')
    const path = i < 0 ? '' : frame.slice(i + 8, frame.indexOf('"', i + 8))
    const sent = this.sendTimes.get(path)
    if (sent === undefined) {
      if (this.unknown++ === 0) log(`an event for no write of this phase: ${frame.slice(0, 300)}`)
      return
    }
    const n = this.received++
    if (n < this.#latency.length) {
      this.#latency[n] = now - sent
      const a = frame.indexOf('"at":"')
      this.#atLatency[n] = a < 0 ? Number.NaN : Date.now() - Date.parse(frame.slice(a + 6, frame.indexOf('"', a + 6)))
    }
    this.lastReceipt = now
    this.lastFrame = frame
  }

  latency (): { send: Latency, commit: Latency } {
    const n = Math.min(this.received, this.#latency.length)
    return { send: latency(this.#latency, n), commit: latency(this.#atLatency, n) }
  }

  /**
   * Opens `count` sockets, `concurrency` at a time. With a token: waits for `connected`, then
   * subscribes to the workspace and waits for `subscribed` (the real server's protocol); without,
   * the socket is ready once open (the bare baseline).
   */
  async connect (url: string, count: number, sub: Subscription, concurrency = 50): Promise<void> {
    let next = 0
    const one = async (): Promise<void> => {
      while (next < count) {
        next++
        this.sockets.push(await this.#open(url, sub))
      }
    }
    await Promise.all(Array.from({ length: Math.min(concurrency, count) }, one))
  }

  async #open (url: string, sub: Subscription): Promise<WebSocket> {
    const headers: Record<string, string> = sub.token === undefined ? {} : { authorization: `Bearer ${sub.token}` }
    const ws = new WebSocket(url, { headers, perMessageDeflate: false })
    return await new Promise<WebSocket>((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error(`socket to ${url} not ready in 20 s`)) }, 20_000)
      const ready = (): void => { clearTimeout(timer); resolve(ws) }
      ws.on('message', (data: RawData) => {
        const frame = data.toString()
        if (frame.startsWith('{"type":"event"')) {
          this.#onEvent(ws, frame)
          return
        }
        const type = (JSON.parse(frame) as { type?: string }).type
        if (type === 'connected' && sub.workspaceId !== undefined) ws.send(JSON.stringify({ type: 'subscribe', channel: `workspace:${sub.workspaceId}` }))
        else if (type === 'subscribed') ready()
        else if (type === 'error') reject(new Error(`subscribe failed: ${frame}`))
      })
      ws.once('open', () => { if (sub.token === undefined) ready() })
      ws.once('error', err => { clearTimeout(timer); reject(err) })
      ws.once('close', (code: number, reason: Buffer) => {
        this.unexpectedCloses++
        log(`a subscriber's socket closed: ${code} ${reason.toString()}`)
      })
    })
  }

  close (): void {
    for (const ws of this.sockets) {
      ws.removeAllListeners('close')
      ws.terminate()
    }
    this.sockets.length = 0
  }
}

/** Fires `fire(i)` at t0 + i/rate for `seconds`; resolves once the last one is fired. */
export async function openLoop (rate: number, seconds: number, fire: (i: number, scheduledAt: number) => void): Promise<number> {
  const total = Math.round(rate * seconds)
  const interval = 1000 / rate
  const t0 = performance.now() + 2
  let i = 0
  while (i < total) {
    const now = performance.now()
    while (i < total && t0 + i * interval <= now) {
      fire(i, t0 + i * interval)
      i++
    }
    if (i < total) await sleep(Math.max(0, t0 + i * interval - performance.now()))
  }
  return total
}

export interface WriteTarget {
  base: string
  token: string
  workspaceId: string
  /** 1 KiB of content; a suffix makes each write's content unique */
  content: string
}

/**
 * Writes: one path, a PUT of the file; several, one batch of creates (one change event each).
 * On a keep-alive agent; resolves with the status (0: transport error).
 */
export function putFiles (agent: Agent, target: WriteTarget, paths: string[]): Promise<number> {
  const single = paths.length === 1 && paths[0] !== undefined
  const body = single
    ? JSON.stringify({ content: target.content + (paths[0] ?? '') })
    : JSON.stringify({ operations: paths.map(path => ({ type: 'create', path, content: target.content + path })) })
  const url = new URL(`${target.base}/v1/workspaces/${target.workspaceId}${single ? `/files${paths[0] ?? ''}` : '/operations/batch'}`)
  // A keep-alive socket the server closed as idle just as a write went out on it fails with
  // ECONNRESET before any answer: sent again once on a new socket, as Node's docs advise
  // (`request.reusedSocket`). Any other failure counts as an error.
  const send = (retry: boolean): Promise<number> => new Promise<number>(resolve => {
    const req = request(url, {
      method: single ? 'PUT' : 'POST',
      agent,
      headers: { authorization: `Bearer ${target.token}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }
    }, res => {
      res.resume()
      res.on('end', () => { resolve(res.statusCode ?? 0) })
    })
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (retry && req.reusedSocket && err.code === 'ECONNRESET') {
        resolve(send(false))
        return
      }
      log(`write to ${url.pathname} failed: ${err.message}`)
      resolve(0)
    })
    req.end(body)
  })
  return send(true)
}

export interface FanoutRun {
  offeredPerS: number
  seconds: number
  subscribers: number
  sent: number
  expected: number
  received: number
  /** deliveries per second: every receipt at every subscriber, from the first send to the last receipt */
  rate: number
  /** send-to-receipt latency, ms */
  latency: Latency
  /** `data.at`-to-receipt latency (the change's time in its transaction, ms precision) */
  commitLatency: Latency
  errors: number
  non2xx: number
  /** count per HTTP status of the writes that were not 2xx */
  statuses: Record<string, number>
  missing: number
  serverCpuPct: number
  loaderCpuPct: number
}

export interface FanoutPhase {
  subscribers: Subscribers
  count: number
  rate: number
  seconds: number
  /** events per fire: 1 (a PUT), or a batch of creates (one event each) */
  eventsPerFire: number
  /** sends the write (or triggers) for these paths; resolves with an HTTP status (200 for triggers) */
  fire: (paths: string[]) => Promise<number>
  tag: string
  serverPids: number[]
  /** after the last write, wait for deliveries until none has come for this long */
  stallMs: number
}

/** One fixed-rate phase: fire, then wait for every delivery (or the drain timeout). */
export async function runFanout (p: FanoutPhase): Promise<FanoutRun> {
  const { subscribers: subs } = p
  const total = Math.round(p.rate * p.seconds)
  subs.reset(total * p.eventsPerFire * p.count)
  const closes0 = subs.unexpectedCloses
  const meters = p.serverPids.map(pid => cpuMeter(pid))
  const loader = selfCpuMeter()
  let non2xx = 0
  let errors = 0
  let ok = 0
  const statuses: Record<string, number> = {}
  const pending: Array<Promise<void>> = []
  let first = 0
  await openLoop(p.rate, p.seconds, (i, at) => {
    if (i === 0) first = at
    const paths = Array.from({ length: p.eventsPerFire }, (_, k) => `/fan/${p.tag}/w${String(i).padStart(6, '0')}-${String(k).padStart(2, '0')}.txt`)
    for (const path of paths) subs.sendTimes.set(path, at)
    pending.push(p.fire(paths).then(status => {
      if (status === 0) errors++
      else if (status < 200 || status >= 300) {
        non2xx++
        statuses[status] = (statuses[status] ?? 0) + 1
      } else ok++
    }))
  })
  await Promise.all(pending)
  const expected = ok * p.eventsPerFire * p.count
  // Slow is not lost: keep waiting while deliveries still arrive (hard stop after 5 minutes).
  const hardStop = performance.now() + 300_000
  let seen = subs.received
  let lastProgress = performance.now()
  while (subs.received < expected && performance.now() - lastProgress < p.stallMs && performance.now() < hardStop) {
    await sleep(20)
    if (subs.received !== seen) {
      seen = subs.received
      lastProgress = performance.now()
    }
  }
  const serverCpuPct = meters.reduce((sum, m) => sum + m(), 0)
  const loaderCpuPct = loader()
  const { send, commit } = subs.latency()
  const spanS = Math.max(1e-3, (subs.lastReceipt - first) / 1000)
  const missing = Math.max(0, expected - subs.received)
  const closes = subs.unexpectedCloses - closes0
  const failures = errors + missing + subs.unknown + subs.outOfOrder + closes
  if (failures > 0) log(`${p.tag}: ${errors} writes failed, ${missing} deliveries missing, ${subs.unknown} unknown, ${subs.outOfOrder} out of order, ${closes} sockets closed`)
  return {
    offeredPerS: p.rate,
    seconds: p.seconds,
    subscribers: p.count,
    sent: total * p.eventsPerFire,
    expected,
    received: subs.received,
    rate: round(subs.received / spanS, 0),
    latency: send,
    commitLatency: commit,
    errors: failures,
    non2xx,
    statuses,
    missing,
    serverCpuPct,
    loaderCpuPct
  }
}

export const keepAlive = (): Agent => new Agent({ keepAlive: true, maxSockets: 64 })
