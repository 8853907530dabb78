import { ApiError, NETWORK_ERROR } from './errors.js'
import type { Change, RpcMethod, RpcParams, RpcResults } from './types.js'
import type { WorkbenchClient } from './client.js'
import { newId } from './ids.js'

/**
 * The one WebSocket of a client (`client.live`): workspace subscriptions that resume from the
 * last applied revision after any disconnect, RPC, broadcasts. Uses only the standard WebSocket
 * interface, so it runs in browsers and, given `ws`'s constructor, in Node.
 */

/** What the SDK needs of a WebSocket: the browser's, or `ws`'s (which has the same interface). */
export interface WebSocketLike {
  readonly readyState: number
  send: (data: string) => void
  close: (code?: number, reason?: string) => void
  /** `ws` only: cut the connection without the closing handshake */
  terminate?: () => void
  // The events' types differ between implementations; the SDK reads `data`, `code` and `reason`.
  onopen: ((event: any) => void) | null
  onmessage: ((event: any) => void) | null
  onclose: ((event: any) => void) | null
  onerror: ((event: any) => void) | null
}
export type WebSocketConstructor = new (url: string) => WebSocketLike

export interface LiveOptions {
  /** first reconnect delay ceiling (default 500 ms); doubles per failed attempt, full jitter */
  reconnectDelayMs?: number
  /** the largest reconnect delay (default 30 s) */
  maxReconnectDelayMs?: number
  /**
   * a socket that has received nothing for this long is taken for dead, dropped and reconnected
   * (default: 1.5 × the server's `connected.config.heartbeatMs`, the server's own tolerance). The
   * SDK sends a ping after a third of it without a message.
   */
  heartbeatTimeoutMs?: number
  /** a socket that does not say `connected` within this is dropped (default 10 s) */
  connectTimeoutMs?: number
  /** after `online` / the tab becoming visible, a socket that answers nothing within this is dropped (default 3 s) */
  probeTimeoutMs?: number
  /** an RPC without an answer after this fails (default 30 s) */
  rpcTimeoutMs?: number
  /** listen to the browser's `online` and `visibilitychange` (default true where they exist) */
  browserEvents?: boolean
}

export type LiveStatus = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed'

/** A change delivered to a subscription. */
export interface LiveEvent {
  workspaceId: string
  revision: number
  change: Change
  /** the change's opId is one of this client's writes: its own echo */
  own: boolean
}

export interface BroadcastMessage {
  workspaceId: string
  data: unknown
  from: { userId: string, sessionId: string }
  timestamp: string
}

/** A member of a workspace's presence: a session (several sockets of one session are one member). */
export interface PresenceMember { sessionId: string, userId: string, state: Record<string, unknown> }
/** A presence change: `member` is the member as it is now (for `leave`: as it was last). */
export interface PresenceEvent { kind: 'join' | 'update' | 'leave', member: PresenceMember }
export type PresenceListener = (members: ReadonlyMap<string, PresenceMember>, event: PresenceEvent) => void

export interface SubscribeOptions {
  /** the revision the caller's state is at (a snapshot's): events after it are replayed first */
  since?: number
  /**
   * `since` is no longer retained (or is ahead of the head): re-snapshot, and answer the revision
   * of the new snapshot; the subscription resumes from it. Without it the subscription goes on
   * from the head, and what happened in between is not delivered.
   */
  onReset?: (head: number) => Promise<number> | number
  /** the subscription (re)started: after every (re)subscribe, with the revision it reached */
  onSubscribed?: (revision: number) => void
  /** a broadcast by another subscriber of the workspace */
  onBroadcast?: (message: BroadcastMessage) => void
  /** the subscription ended for good (access lost, no such workspace) */
  onError?: (error: ApiError) => void
  /** this client's presence state, announced at every (re)subscribe (see `Subscription.presence.set`) */
  presence?: Record<string, unknown>
  /** a member joined, changed its state or left: with all members after the change, by sessionId */
  onPresence?: (members: ReadonlyMap<string, PresenceMember>, event: PresenceEvent) => void
}

/**
 * A subscription's presence: the members of the workspace (by sessionId, this client's own
 * session too, once it has set a state), kept up to date by the server's events and rebuilt from
 * the server's list after every (re)subscribe, so none is left over from before a reconnect.
 */
export class SubscriptionPresence {
  readonly #members = new Map<string, PresenceMember>()
  readonly #listeners = new Set<PresenceListener>()
  /** the state announced at every (re)subscribe; undefined: this client is not a member */
  #state: Record<string, unknown> | undefined

  constructor (readonly subscription: Subscription) {
    this.#state = subscription.options.presence
    const listener = subscription.options.onPresence
    if (listener !== undefined) this.#listeners.add(listener)
  }

  get members (): ReadonlyMap<string, PresenceMember> { return this.#members }

  /** Sets this client's state: sent now if subscribed (else at the subscribe), and again after every resubscribe. */
  set (state: Record<string, unknown>): void {
    this.#state = state
    if (this.subscription.state === 'active') this.announce()
  }

  /** Called with every change. Returns the function that removes the listener. */
  onChange (listener: PresenceListener): () => void {
    this.#listeners.add(listener)
    return () => { this.#listeners.delete(listener) }
  }

  /** @internal sends the state, if any, to the server */
  announce (): void {
    if (this.#state !== undefined) this.subscription.live.send({ type: 'presence.set', channel: this.subscription.channel, state: this.#state })
  }

  /** @internal the server's list after `subscribed`: replaces the members, telling the differences */
  replace (members: PresenceMember[]): void {
    const fresh = new Map(members.map(m => [m.sessionId, m]))
    for (const [sessionId, member] of this.#members) {
      if (!fresh.has(sessionId)) this.apply('leave', member)
    }
    for (const member of fresh.values()) {
      const before = this.#members.get(member.sessionId)
      if (before === undefined) this.apply('join', member)
      else if (JSON.stringify(before) !== JSON.stringify(member)) this.apply('update', member)
    }
  }

  /** @internal one event from the server */
  apply (kind: PresenceEvent['kind'], member: PresenceMember): void {
    if (kind === 'leave') {
      if (!this.#members.delete(member.sessionId)) return
    } else {
      const had = this.#members.has(member.sessionId)
      this.#members.set(member.sessionId, member)
      kind = had ? 'update' : 'join'
    }
    const event: PresenceEvent = { kind, member }
    for (const listener of [...this.#listeners]) {
      try {
        listener(this.#members, event)
      } catch {
        // one listener's failure must not keep the others from the event
      }
    }
  }
}

type SubState = 'pending' | 'active' | 'resetting' | 'ended'
interface Settle { resolve: (revision: number) => void, reject: (error: ApiError) => void }

/** One workspace channel. `revision` is the last revision delivered; it is where a resume starts. */
export class Subscription {
  revision: number | undefined
  state: SubState = 'pending'
  /** resolves at the first `subscribed`; rejects if the subscription ends before */
  readonly ready: Promise<number>
  /** events held while the subscription has no revision yet (subscribed without `since`) */
  buffered: LiveEvent[] = []
  /** resubscribes in a row that found a gap */
  gaps = 0
  #settle: Settle
  #settled = false
  /** who else is here (and this client, once it has set a state) */
  readonly presence: SubscriptionPresence

  constructor (
    readonly live: Live,
    readonly workspaceId: string,
    readonly options: SubscribeOptions,
    readonly onEvent: (event: LiveEvent) => void
  ) {
    this.revision = options.since
    let settle: Settle | undefined
    this.ready = new Promise<number>((resolve, reject) => { settle = { resolve, reject } })
    this.ready.catch(() => {}) // an unsubscribe before `subscribed` is not an unhandled rejection
    this.#settle = settle ?? { resolve: () => {}, reject: () => {} }
    this.presence = new SubscriptionPresence(this)
  }

  get channel (): string { return `workspace:${this.workspaceId}` }

  subscribed (revision: number): void {
    if (!this.#settled) {
      this.#settled = true
      this.#settle.resolve(revision)
    }
    this.options.onSubscribed?.(revision)
  }

  end (error: ApiError | null): void {
    if (this.state === 'ended') return
    this.state = 'ended'
    if (!this.#settled) {
      this.#settled = true
      this.#settle.reject(error ?? new ApiError(0, 'UNSUBSCRIBED', 'unsubscribed'))
    }
    if (error !== null) this.options.onError?.(error)
  }

  /** Sends data to the channel's other subscribers (ephemeral: cursors, selections). */
  broadcast (data: unknown): void {
    this.live.send({ type: 'broadcast', channel: this.channel, data })
  }

  unsubscribe (): void {
    this.live.unsubscribe(this)
  }
}

interface PendingRpc {
  message: { type: 'rpc', id: string, method: string, params: Record<string, unknown> }
  resolve: (value: unknown) => void
  reject: (error: ApiError) => void
  timer: ReturnType<typeof setTimeout>
}

const MUTATING: ReadonlySet<string> = new Set(['files.write', 'files.delete', 'operations.apply', 'operations.batch'])

interface ServerMessage {
  type: string
  channel?: string
  revision?: number
  reset?: boolean
  data?: unknown
  code?: string
  message?: string
  details?: Record<string, unknown>
  id?: string | number
  result?: unknown
  error?: { code: string, message: string, details?: Record<string, unknown> }
  config?: { heartbeatMs?: number }
  from?: { userId: string, sessionId: string }
  timestamp?: string
  kind?: PresenceEvent['kind']
  sessionId?: string
  userId?: string
  state?: Record<string, unknown>
  members?: PresenceMember[]
}

export class Live {
  readonly #client: WorkbenchClient
  readonly #WebSocket: WebSocketConstructor | undefined
  readonly #options: LiveOptions
  readonly #subs = new Map<string, Subscription>()
  readonly #rpcs = new Map<string, PendingRpc>()
  readonly #statusListeners = new Set<(status: LiveStatus) => void>()
  #socket: WebSocketLike | null = null
  #open = false
  #status: LiveStatus = 'idle'
  #stopped = true
  #attempt = 0
  #rpcIds = 0
  #socketToken: string | null = null
  #lastSeen = 0
  /** messages received on the current socket (a probe waits for one more) */
  #received = 0
  #lastPing = 0
  #heartbeatMs = 30_000
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined
  #connectTimer: ReturnType<typeof setTimeout> | undefined
  #heartbeatTimer: ReturnType<typeof setInterval> | undefined
  #refreshTimer: ReturnType<typeof setTimeout> | undefined
  #unlistenTokens: (() => void) | null = null
  #unlistenBrowser: (() => void) | null = null
  /** how many sockets reached `connected` (tests and diagnostics) */
  connections = 0

  constructor (client: WorkbenchClient, WebSocketImpl: WebSocketConstructor | undefined, options: LiveOptions) {
    this.#client = client
    this.#WebSocket = WebSocketImpl
    this.#options = options
  }

  get status (): LiveStatus { return this.#status }

  /** Called with every status change. Returns the unsubscribe function. */
  onStatus (listener: (status: LiveStatus) => void): () => void {
    this.#statusListeners.add(listener)
    return () => { this.#statusListeners.delete(listener) }
  }

  #setStatus (status: LiveStatus): void {
    if (this.#status === status) return
    this.#status = status
    for (const listener of this.#statusListeners) listener(status)
  }

  /** Opens the socket (subscribe and rpc do it on their own). */
  connect (): void {
    if (!this.#stopped) return
    this.#stopped = false
    this.#unlistenTokens = this.#client.onTokens(tokens => { this.#tokensChanged(tokens === null ? null : tokens.accessToken) })
    this.#listenBrowser()
    void this.#connect()
  }

  /** Closes the socket and ends every subscription and pending RPC. */
  close (): void {
    if (this.#stopped) return
    this.#stopped = true
    this.#unlistenTokens?.()
    this.#unlistenBrowser?.()
    clearTimeout(this.#reconnectTimer)
    clearTimeout(this.#refreshTimer)
    const socket = this.#socket
    this.#detach()
    socket?.close(1000, 'client closed')
    for (const sub of this.#subs.values()) sub.end(null)
    this.#subs.clear()
    for (const rpc of this.#rpcs.values()) {
      clearTimeout(rpc.timer)
      rpc.reject(new ApiError(0, NETWORK_ERROR, 'the live connection was closed'))
    }
    this.#rpcs.clear()
    this.#setStatus('closed')
  }

  /**
   * Drops the current socket as if the network had failed (it reconnects and resumes). For tests,
   * and for apps that know better than the heartbeat that the connection is gone.
   */
  reconnectNow (): void {
    if (this.#stopped) return
    if (this.#socket !== null) this.#lost(this.#socket, 4000, 'reconnect requested')
    else {
      clearTimeout(this.#reconnectTimer)
      void this.#connect()
    }
  }

  // ---- subscriptions ------------------------------------------------------------------------

  /**
   * Follows a workspace's changes: `onEvent` gets each change once, in revision order, from
   * `since` on (replayed first), across reconnects and server restarts. Subscribing again to the
   * same workspace replaces the earlier subscription.
   */
  subscribe (workspaceId: string, options: SubscribeOptions, onEvent: (event: LiveEvent) => void): Subscription {
    const previous = this.#subs.get(workspaceId)
    if (previous !== undefined) previous.end(null)
    const sub = new Subscription(this, workspaceId, options, onEvent)
    this.#subs.set(workspaceId, sub)
    if (this.#stopped) this.connect()
    else if (this.#open) this.#sendSubscribe(sub)
    return sub
  }

  unsubscribe (sub: Subscription): void {
    if (this.#subs.get(sub.workspaceId) !== sub) return
    this.#subs.delete(sub.workspaceId)
    sub.end(null)
    if (this.#open) this.send({ type: 'unsubscribe', channel: sub.channel })
  }

  #sendSubscribe (sub: Subscription): void {
    sub.state = 'pending'
    this.send({ type: 'subscribe', channel: sub.channel, ...(sub.revision === undefined ? {} : { since: sub.revision }) })
  }

  // ---- RPC ----------------------------------------------------------------------------------

  /**
   * Calls an RPC method over the socket. Mutating methods get an `idempotencyKey` (unless given),
   * so a call whose socket dropped is sent again after the reconnect, applied once.
   */
  async rpc<M extends RpcMethod> (method: M, params: RpcParams<M>): Promise<RpcResults[M]> {
    const p = { ...params } as Record<string, unknown>
    if (MUTATING.has(method)) {
      if (typeof p.idempotencyKey !== 'string') p.idempotencyKey = newId()
      this.#client.rememberOp(p.idempotencyKey as string)
    }
    const id = `r${++this.#rpcIds}`
    const message = { type: 'rpc' as const, id, method, params: p }
    return await new Promise<RpcResults[M]>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#rpcs.delete(id)
        reject(new ApiError(0, NETWORK_ERROR, `rpc ${method}: no answer in time`))
      }, this.#options.rpcTimeoutMs ?? 30_000)
      this.#rpcs.set(id, { message, resolve: resolve as (v: unknown) => void, reject, timer })
      if (this.#stopped) this.connect()
      else if (this.#open) this.send(message)
    })
  }

  // ---- the socket ---------------------------------------------------------------------------

  /** Sends a message if the socket is open (else it is dropped: subscriptions and RPCs are re-sent on connect). */
  send (message: Record<string, unknown>): void {
    if (this.#socket === null || !this.#open) return
    try {
      this.#socket.send(JSON.stringify(message))
    } catch {
      // closing: its close event reconnects
    }
  }

  async #connect (): Promise<void> {
    if (this.#stopped || this.#socket !== null) return
    this.#setStatus(this.connections === 0 ? 'connecting' : 'reconnecting')
    const WS = this.#WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket
    if (WS === undefined) {
      this.#fail(new ApiError(0, 'NO_WEBSOCKET', 'no global WebSocket: pass the `WebSocket` option (in Node 20, `ws`\'s)'))
      return
    }
    let token: string
    try {
      token = await this.#client.accessToken()
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) this.#fail(err)
      else this.#schedule()
      return
    }
    if (this.#stopped || this.#socket !== null) return
    const url = this.#client.baseUrl.replace(/^http/, 'ws') + '/v1/ws'
    let socket: WebSocketLike
    try {
      socket = new WS(url)
    } catch {
      this.#schedule()
      return
    }
    this.#socket = socket
    this.#socketToken = token
    this.#lastSeen = Date.now()
    const sessionId = this.#client.sessionId
    socket.onopen = () => {
      socket.send(JSON.stringify({ type: 'auth', token, ...(sessionId === undefined ? {} : { sessionId }) }))
    }
    socket.onmessage = (event: { data: unknown }) => { this.#receive(socket, event.data) }
    socket.onclose = (event: { code?: number, reason?: unknown }) => { this.#lost(socket, event.code ?? 1006, String(event.reason ?? '')) }
    socket.onerror = () => { /* a close event follows */ }
    this.#connectTimer = setTimeout(() => { this.#lost(socket, 4000, 'no connected in time') }, this.#options.connectTimeoutMs ?? 10_000)
  }

  /** Stops listening to a socket and closes it, without the handshake where possible. */
  #detach (): void {
    const socket = this.#socket
    this.#socket = null
    this.#open = false
    clearTimeout(this.#connectTimer)
    clearInterval(this.#heartbeatTimer)
    if (socket === null) return
    socket.onopen = socket.onmessage = socket.onclose = null
    // Not null: in Node, `ws` reports a socket ended while still connecting as an 'error' event,
    // which without a listener would be thrown (an uncaught exception).
    socket.onerror = () => {}
    try {
      if (socket.terminate !== undefined) socket.terminate()
      else socket.close(4000, 'dropped')
    } catch {
      // already closed
    }
  }

  /** A socket ended (closed, timed out, or taken for dead): decides whether and when to reconnect. */
  #lost (socket: WebSocketLike, code: number, reason: string): void {
    if (socket !== this.#socket) return
    const usedToken = this.#socketToken
    this.#detach()
    if (this.#stopped) return
    // A re-snapshot in progress (resetting) goes on; it subscribes again once done.
    for (const sub of this.#subs.values()) if (sub.state === 'active') sub.state = 'pending'
    if (code === 4401) {
      if (reason === 'SESSION_ENDED') {
        this.#fail(new ApiError(401, 'UNAUTHENTICATED', 'the session has ended (logged out)'))
        return
      }
      // Expired or refused: a fresh token (one refresh for the whole client), then at once again.
      this.#setStatus('reconnecting')
      this.#client.tokenRefused(usedToken ?? '').then(() => { void this.#connect() }, (err: unknown) => {
        if (err instanceof ApiError && err.status === 401) this.#fail(err)
        else this.#schedule()
      })
      return
    }
    if (code === 4403) {
      // Access lost to the socket's only subscribed workspace.
      for (const [id, sub] of this.#subs) {
        this.#subs.delete(id)
        sub.end(new ApiError(404, 'WORKSPACE_NOT_FOUND', `access to workspace ${id} was lost`))
      }
    }
    this.#schedule()
  }

  /** Logged out or refused for good: stops, telling every subscription. */
  #fail (error: ApiError): void {
    for (const sub of this.#subs.values()) sub.end(error)
    this.#subs.clear()
    this.close()
  }

  /** The next attempt, after a delay drawn between 0 and min(max, base · 2^attempt). */
  #schedule (): void {
    if (this.#stopped) return
    clearTimeout(this.#reconnectTimer)
    this.#setStatus('reconnecting')
    const ceiling = Math.min(this.#options.maxReconnectDelayMs ?? 30_000, (this.#options.reconnectDelayMs ?? 500) * 2 ** this.#attempt)
    this.#attempt = Math.min(this.#attempt + 1, 30)
    this.#reconnectTimer = setTimeout(() => { void this.#connect() }, Math.random() * ceiling)
  }

  #tokensChanged (accessToken: string | null): void {
    if (accessToken === null) {
      this.close()
      return
    }
    if (this.#open && accessToken !== this.#socketToken) {
      this.#socketToken = accessToken
      this.send({ type: 'auth', token: accessToken })
    }
    this.#scheduleRefresh()
  }

  /** While the socket is open, the tokens are refreshed before they expire, and the socket re-authenticated. */
  #scheduleRefresh (): void {
    clearTimeout(this.#refreshTimer)
    const expiresAt = this.#client.tokens?.expiresAt
    if (expiresAt === undefined || this.#stopped) return
    const wait = Math.max(1_000, expiresAt - Date.now() - 60_000)
    this.#refreshTimer = setTimeout(() => {
      if (this.#open) this.#client.refresh().catch(() => { /* the socket's 4401 handles it */ })
    }, Math.min(wait, 2 ** 31 - 1))
  }

  #heartbeat (socket: WebSocketLike): void {
    const timeout = this.#options.heartbeatTimeoutMs ?? this.#heartbeatMs * 1.5
    clearInterval(this.#heartbeatTimer)
    this.#heartbeatTimer = setInterval(() => {
      if (socket !== this.#socket) return
      const now = Date.now()
      const idle = now - this.#lastSeen
      if (idle >= timeout) {
        this.#lost(socket, 4000, 'heartbeat timeout')
        return
      }
      if (idle >= timeout / 3 && now - this.#lastPing >= timeout / 3) {
        this.#lastPing = now
        this.send({ type: 'ping' })
      }
    }, Math.max(50, timeout / 6))
  }

  /** Checks at once that the socket still answers (the network came back, the tab woke up). */
  #probe (): void {
    if (this.#stopped) return
    const socket = this.#socket
    if (socket === null) {
      clearTimeout(this.#reconnectTimer)
      this.#attempt = 0
      void this.#connect()
      return
    }
    if (!this.#open) return
    const before = this.#received
    this.send({ type: 'ping' })
    setTimeout(() => {
      if (socket === this.#socket && this.#received === before) this.#lost(socket, 4000, 'no answer to a probe')
    }, this.#options.probeTimeoutMs ?? 3_000)
  }

  #listenBrowser (): void {
    const g = globalThis as { addEventListener?: (type: string, f: () => void) => void, removeEventListener?: (type: string, f: () => void) => void, document?: { visibilityState?: string, addEventListener: (type: string, f: () => void) => void, removeEventListener: (type: string, f: () => void) => void } }
    if (this.#options.browserEvents === false || typeof g.addEventListener !== 'function' || g.document === undefined) return
    const doc = g.document
    const online = (): void => { this.#probe() }
    const visible = (): void => { if (doc.visibilityState === 'visible') this.#probe() }
    g.addEventListener('online', online)
    doc.addEventListener('visibilitychange', visible)
    this.#unlistenBrowser = () => {
      g.removeEventListener?.('online', online)
      doc.removeEventListener('visibilitychange', visible)
    }
  }

  // ---- messages -----------------------------------------------------------------------------

  #receive (socket: WebSocketLike, data: unknown): void {
    if (socket !== this.#socket) return
    this.#lastSeen = Date.now()
    this.#received++
    let message: ServerMessage
    try {
      message = JSON.parse(typeof data === 'string' ? data : String(data)) as ServerMessage
    } catch {
      return
    }
    switch (message.type) {
      case 'connected': return this.#connected(socket, message)
      case 'event': return this.#event(message)
      case 'subscribed': return this.#subscribed(message)
      case 'unsubscribed': return this.#unsubscribed(message)
      case 'broadcast': return this.#broadcast(message)
      case 'presence': return this.#presence(message)
      case 'presence.members': return this.#presenceMembers(message)
      case 'error': return this.#error(message)
      case 'rpc.result':
      case 'rpc.error': return this.#rpcAnswer(message)
    }
  }

  #connected (socket: WebSocketLike, message: ServerMessage): void {
    clearTimeout(this.#connectTimer)
    this.#open = true
    this.#attempt = 0
    this.connections++
    this.#heartbeatMs = message.config?.heartbeatMs ?? 30_000
    this.#heartbeat(socket)
    this.#scheduleRefresh()
    // The tokens may have changed while the socket was opening.
    const current = this.#client.tokens?.accessToken
    if (current !== undefined && current !== this.#socketToken) this.#tokensChanged(current)
    this.#setStatus('open')
    for (const sub of this.#subs.values()) if (sub.state !== 'ended' && sub.state !== 'resetting') this.#sendSubscribe(sub)
    for (const rpc of this.#rpcs.values()) this.send(rpc.message)
  }

  #subFor (channel: string | undefined): Subscription | undefined {
    if (channel === undefined || !channel.startsWith('workspace:')) return undefined
    const sub = this.#subs.get(channel.slice('workspace:'.length).toLowerCase())
    return sub === undefined || sub.state === 'ended' ? undefined : sub
  }

  #event (message: ServerMessage): void {
    const sub = this.#subFor(message.channel)
    const revision = message.revision
    if (sub === undefined || typeof revision !== 'number' || sub.state === 'resetting') return
    const event: LiveEvent = { workspaceId: sub.workspaceId, revision, change: message.data as Change, own: this.#client.isOwnOp((message.data as Change | undefined)?.opId) }
    if (sub.revision === undefined) {
      // Subscribed without `since`: held until `subscribed` says where the stream starts.
      sub.buffered.push(event)
      return
    }
    this.#deliver(sub, event)
  }

  #deliver (sub: Subscription, event: LiveEvent): void {
    const last = sub.revision ?? 0
    if (event.revision <= last) return // already delivered (a replay overlapping the stream)
    if (event.revision > last + 1) {
      // A hole: ask again from the last revision delivered (once until it answers).
      if (sub.state === 'active') this.#sendSubscribe(sub)
      return
    }
    sub.revision = event.revision
    sub.onEvent(event)
  }

  #subscribed (message: ServerMessage): void {
    const sub = this.#subFor(message.channel)
    const head = message.revision
    if (sub === undefined || typeof head !== 'number' || sub.state === 'resetting') return
    if (message.reset === true) {
      this.#reset(sub, head)
      return
    }
    if (sub.revision === undefined) {
      sub.revision = head
      const held = sub.buffered
      sub.buffered = []
      sub.state = 'active'
      for (const event of held) this.#deliver(sub, event)
    } else if (sub.revision < head && sub.gaps < 3) {
      // The replay reached further than what arrived: something went missing; ask again.
      sub.gaps++
      this.#sendSubscribe(sub)
      return
    }
    sub.gaps = 0
    sub.state = 'active'
    sub.presence.announce()
    sub.subscribed(head)
  }

  /** `since` was too old: the owner re-snapshots, and the subscription resumes from its snapshot. */
  #reset (sub: Subscription, head: number): void {
    const onReset = sub.options.onReset
    if (onReset === undefined) {
      sub.revision = head
      sub.state = 'active'
      sub.presence.announce()
      sub.subscribed(head)
      return
    }
    sub.state = 'resetting'
    Promise.resolve().then(() => onReset(head)).then(revision => {
      if (sub.state !== 'resetting') return
      sub.revision = revision
      this.#sendSubscribe(sub)
    }, () => {
      if (sub.state !== 'resetting') return
      // The snapshot failed: try again later, from where the subscription was (another reset).
      sub.state = 'pending'
      setTimeout(() => { if (sub.state === 'pending' && this.#open) this.#sendSubscribe(sub) }, 1_000)
    })
  }

  #unsubscribed (message: ServerMessage): void {
    const sub = this.#subFor(message.channel)
    if (sub === undefined) return
    // Not asked for: the server ended it (access lost).
    this.#subs.delete(sub.workspaceId)
    sub.end(new ApiError(404, 'WORKSPACE_NOT_FOUND', `the subscription to ${sub.workspaceId} ended`))
  }

  #broadcast (message: ServerMessage): void {
    const sub = this.#subFor(message.channel)
    if (sub === undefined || message.from === undefined) return
    sub.options.onBroadcast?.({ workspaceId: sub.workspaceId, data: message.data, from: message.from, timestamp: message.timestamp ?? '' })
  }

  #presence (message: ServerMessage): void {
    const sub = this.#subFor(message.channel)
    const { kind, sessionId, userId, state } = message
    if (sub === undefined || kind === undefined || sessionId === undefined || userId === undefined) return
    sub.presence.apply(kind, { sessionId, userId, state: state ?? {} })
  }

  /** After every `subscribed`: the members as the server knows them now. */
  #presenceMembers (message: ServerMessage): void {
    const sub = this.#subFor(message.channel)
    if (sub === undefined || !Array.isArray(message.members)) return
    sub.presence.replace(message.members)
  }

  #error (message: ServerMessage): void {
    const sub = this.#subFor(message.channel)
    if (sub === undefined) return
    const code = message.code ?? 'INTERNAL'
    if (code === 'UNAVAILABLE' || code === 'RATE_LIMITED') {
      // Cannot subscribe right now: again a little later, from the same revision.
      setTimeout(() => { if (sub.state === 'pending' && this.#open) this.#sendSubscribe(sub) }, 500 + Math.random() * 1_000)
      return
    }
    if (code === 'WORKSPACE_NOT_FOUND' || code === 'VALIDATION_FAILED' || code === 'FORBIDDEN') {
      this.#subs.delete(sub.workspaceId)
      sub.end(new ApiError(code === 'VALIDATION_FAILED' ? 400 : 404, code, message.message ?? code, message.details))
    }
  }

  #rpcAnswer (message: ServerMessage): void {
    const id = String(message.id)
    const rpc = this.#rpcs.get(id)
    if (rpc === undefined) return
    this.#rpcs.delete(id)
    clearTimeout(rpc.timer)
    if (message.type === 'rpc.result') rpc.resolve(message.result)
    else {
      const e = message.error ?? { code: 'INTERNAL', message: 'rpc failed' }
      rpc.reject(new ApiError(STATUS[e.code] ?? 400, e.code, e.message, e.details))
    }
  }
}

/** The HTTP status of an RPC error's code (as REST would answer it). */
const STATUS: Record<string, number> = {
  VALIDATION_FAILED: 400,
  INVALID_PATH: 400,
  INVALID_MOVE: 400,
  IS_A_DIRECTORY: 400,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  FILE_NOT_FOUND: 404,
  WORKSPACE_NOT_FOUND: 404,
  METHOD_NOT_FOUND: 404,
  FILE_EXISTS: 409,
  TARGET_EXISTS: 409,
  NOT_A_DIRECTORY: 409,
  REVERT_CONFLICT: 409,
  IN_PROGRESS: 409,
  EDIT_NO_MATCH: 409,
  EDIT_AMBIGUOUS: 409,
  PRECONDITION_FAILED: 412,
  FILE_TOO_LARGE: 413,
  PAYLOAD_TOO_LARGE: 413,
  TOO_MANY_ENTRIES: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  NOT_TEXT: 415,
  IDEMPOTENCY_KEY_REUSED: 422,
  RATE_LIMITED: 429,
  INTERNAL: 500,
  UNAVAILABLE: 503
}
