import type { IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import WebSocket, { type ClientOptions } from 'ws'
import type { Teardown } from './app.js'
import { ISO } from './files.js'

/** The one WebSocket helper: real `ws` clients against a listening app or a spawned server. */

/** A message from the server. */
export type Msg = Record<string, unknown> & { type: string }
export interface Closed { code: number, reason: string }
export interface EventMsg extends Msg { type: 'event', channel: string, event: string, revision: number, data: Record<string, unknown> }

export const isEvent = (m: Msg): m is EventMsg => m.type === 'event' && typeof m.revision === 'number'

/** A `ws` client that keeps every message it got, and can wait for one. */
export class Client {
  readonly messages: Msg[] = []
  readonly closed: Promise<Closed>
  #onChange: Array<() => void> = []
  #closedWith: Closed | undefined
  #socket: Socket | undefined

  /** Listens from the start: `connected` can come in the same packet as the upgrade response. */
  constructor (readonly ws: WebSocket) {
    ws.once('upgrade', (res: IncomingMessage) => { this.#socket = res.socket })
    ws.on('message', (data, isBinary) => {
      this.messages.push(isBinary ? { type: '<binary>' } : JSON.parse(data.toString()) as Msg)
      this.#changed()
    })
    this.closed = new Promise<Closed>(resolve => {
      ws.on('close', (code, reason) => {
        this.#closedWith = { code, reason: reason.toString() }
        resolve(this.#closedWith)
        this.#changed()
      })
    })
    ws.on('error', () => { /* surfaces as 'close' (1006) */ })
  }

  /** The TCP socket under the WebSocket (from the 'upgrade' event): pause it to stop reading. */
  get socket (): Socket {
    if (this.#socket === undefined) throw new Error('not upgraded yet')
    return this.#socket
  }

  get isClosed (): boolean { return this.#closedWith !== undefined }

  #changed (): void {
    for (const f of [...this.#onChange]) f()
  }

  send (message: unknown): void {
    this.ws.send(typeof message === 'string' ? message : JSON.stringify(message))
  }

  /** Resolves with check()'s first non-undefined value, rechecked on every message; rejects after timeoutMs. */
  async until<T> (check: () => T | undefined, what: string, timeoutMs = 5_000): Promise<T> {
    const first = check()
    if (first !== undefined) return first
    return await new Promise<T>((resolve, reject) => {
      const listener = (): void => {
        const value = check()
        if (value !== undefined) {
          done()
          resolve(value)
        } else if (this.isClosed) {
          done()
          reject(new Error(`socket closed (${JSON.stringify(this.#closedWith)}) while waiting for ${what}; last messages: ${this.#tail()}`))
        }
      }
      const timer = setTimeout(() => {
        done()
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last messages: ${this.#tail()}`))
      }, timeoutMs)
      const done = (): void => {
        clearTimeout(timer)
        this.#onChange = this.#onChange.filter(f => f !== listener)
      }
      this.#onChange.push(listener)
    })
  }

  #tail (): string {
    return JSON.stringify(this.messages.slice(-3)).slice(0, 600)
  }

  /** The first message at index `from` or later that matches. */
  async next (match: (m: Msg) => boolean, what: string, from = 0, timeoutMs = 5_000): Promise<Msg> {
    return await this.until(() => this.messages.slice(from).find(match), what, timeoutMs)
  }

  /** Sends a message and waits for the first later message of one of `types`. */
  async request (message: Record<string, unknown>, types: string[], timeoutMs = 5_000): Promise<Msg> {
    const from = this.messages.length
    this.send(message)
    return await this.next(m => types.includes(m.type), `${types.join('|')} after ${String(message.type)}`, from, timeoutMs)
  }

  /** Sends an RPC and waits for its answer. */
  async rpc (method: string, params: Record<string, unknown>, timeoutMs = 10_000): Promise<Msg> {
    const id = `${method}-${++rpcIds}`
    const from = this.messages.length
    this.send({ type: 'rpc', id, method, params })
    return await this.next(m => (m.type === 'rpc.result' || m.type === 'rpc.error') && m.id === id, `answer to rpc ${id}`, from, timeoutMs)
  }

  /** Subscribes and waits for `subscribed`. */
  async subscribe (workspaceId: string, since?: number, timeoutMs = 10_000): Promise<Msg> {
    const channel = `workspace:${workspaceId}`
    const from = this.messages.length
    this.send({ type: 'subscribe', channel, ...(since === undefined ? {} : { since }) })
    return await this.next(m => (m.type === 'subscribed' && m.channel === channel) || m.type === 'error', `subscribed to ${channel}`, from, timeoutMs)
  }

  /** Subscribes and returns the revision it subscribed at; throws unless `subscribed` came. */
  async join (workspaceId: string, since?: number): Promise<number> {
    const m = await this.subscribe(workspaceId, since)
    if (m.type !== 'subscribed' || typeof m.revision !== 'number') throw new Error(`not subscribed: ${JSON.stringify(m)}`)
    return m.revision
  }

  /** The revisions of the events received on a workspace's channel, in arrival order. */
  revisions (workspaceId: string): number[] {
    const channel = `workspace:${workspaceId}`
    return this.messages.filter(isEvent).filter(m => m.channel === channel).map(m => m.revision)
  }

  /** Waits until the channel's events reach `revision`. */
  async untilRevision (workspaceId: string, revision: number, timeoutMs = 30_000): Promise<number[]> {
    return await this.until(() => {
      const revs = this.revisions(workspaceId)
      return (revs.at(-1) ?? 0) >= revision ? revs : undefined
    }, `revision ${revision} on workspace:${workspaceId}`, timeoutMs)
  }

  close (): void {
    if (!this.isClosed) this.ws.close()
  }
}
let rpcIds = 0

export interface ConnectOptions {
  /** sent as `Authorization: Bearer`, and then `connected` is awaited */
  token?: string
  headers?: Record<string, string>
  perMessageDeflate?: boolean
  /** appended to the URL, e.g. `?token=…` */
  query?: string
  /** false: the client never answers protocol pings (a dead peer, as the server sees it) */
  autoPong?: boolean
}

/** Opens a real WebSocket to `/v1/ws`; with a token, resolves once `connected` arrived. */
export async function connect (t: Teardown, base: string, opts: ConnectOptions = {}): Promise<Client> {
  const headers: Record<string, string> = { ...opts.headers }
  if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`
  const options: ClientOptions = { headers, perMessageDeflate: opts.perMessageDeflate ?? false, autoPong: opts.autoPong ?? true }
  const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/v1/ws${opts.query ?? ''}`, options)
  const client = new Client(ws)
  t.teardown(() => { client.ws.terminate() })
  await new Promise<void>((resolve, reject) => {
    ws.once('open', resolve)
    ws.once('error', reject)
    ws.once('unexpected-response', (_req, res: IncomingMessage) => { reject(new Error(`unexpected response ${String(res.statusCode)}`)) })
  })
  if (opts.token !== undefined) await client.next(m => m.type === 'connected', 'connected')
  return client
}

/** `[1, 2, …, n]` */
export const range = (from: number, to: number): number[] => Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i)

/** Replaces ISO timestamps, so results of the same work done at different times compare equal. */
export function withoutTimes (value: unknown): unknown {
  if (typeof value === 'string') return ISO.test(value) ? '<time>' : value
  if (Array.isArray(value)) return value.map(withoutTimes)
  if (typeof value === 'object' && value !== null) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, withoutTimes(v)]))
  return value
}

/** An upgrade the server refuses: its HTTP status, headers and JSON body. */
export async function refusedUpgrade (base: string, headers: Record<string, string> = {}): Promise<{ status: number, headers: IncomingMessage['headers'], body: Record<string, unknown> }> {
  const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/v1/ws`, { headers })
  return await new Promise((resolve, reject) => {
    ws.once('open', () => { ws.terminate(); reject(new Error('the upgrade was accepted')) })
    ws.once('unexpected-response', (_req, res: IncomingMessage) => {
      let text = ''
      res.on('data', (d: Buffer) => { text += d.toString() })
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, headers: res.headers, body: JSON.parse(text) as Record<string, unknown> }) })
    })
    ws.once('error', err => { reject(err) })
  })
}
