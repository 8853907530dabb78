import { randomUUID } from 'node:crypto'
import type { Duplex } from 'node:stream'
import type { WebSocket } from 'ws'
import type { FastifyBaseLogger, FastifyInstance, FastifyRequest } from 'fastify'
import type { Actor, Verified } from '../accounts/auth.js'
import { requireRead } from '../accounts/workspaces.js'
import { AppError, errors, publicError, toAppError } from '../core/errors.js'
import { bearerToken } from '../core/http.js'
import type { Subscriber } from './hub.js'
import { channelName, Close, parseChannel, parseClientMessage, type Frame } from './protocol.js'
import { Inbox } from './inbox.js'
import { callRpc } from './rpc.js'
import { SocketPresence } from './presence.js'
import type { Sockets } from './sockets.js'
import { PRESENCE_MAX_DEPTH, type ServerMessage } from '../../schemas/ws.js'

/** `send` options for a Buffer that holds text (the hub's frames) */
const TEXT = { binary: false } as const

/**
 * One client socket: authentication, its subscriptions, and the messages of the contract's
 * WebSocket section. Frames to the client go through `send`, which enforces the send-buffer bound.
 * The wire format is protocol.ts and RPC is rpc.ts; what stays here (the inbox is inbox.ts, presence is presence.ts) is
 * the state of one socket, which every part of it reads: split further, the parts would have to
 * share the actor, the subscriptions, the inbox and the closing flag through a public surface.
 */
export class Connection implements Subscriber {
  readonly clientId = randomUUID()
  readonly #subscriptions = new Set<string>()
  /** per channel being subscribed: the live frames that came before its `subscribed` was sent */
  readonly #held = new Map<string, { frames: Frame[], bytes: number }>()
  #actor: Actor | null = null
  /** the session of the token that authenticated the socket last: its logout closes the socket */
  #tokenSessionId: string | null = null
  /** answered the last heartbeat ping */
  #alive = true
  #closing = false
  #connectedAt = 0
  /** messages handled one at a time; those waiting are bounded (see `receive`) */
  readonly #inbox: Inbox
  #expiryTimer: NodeJS.Timeout | undefined
  #authTimer: NodeJS.Timeout | undefined
  #tokens: number
  #lastRefill = Date.now()
  readonly #socket: WebSocket
  /** the TCP connection under the WebSocket, corked around a batch of frames */
  readonly #stream: Duplex
  readonly #app: FastifyInstance
  /** the upgrade request: RPC calls are charged to the user's budget on it */
  readonly #request: FastifyRequest
  readonly #log: FastifyBaseLogger
  readonly #sockets: Sockets<Connection>
  /** this socket's presence.set per channel, rate-limited (presence.ts) */
  readonly #presence: SocketPresence

  constructor (app: FastifyInstance, socket: WebSocket, request: FastifyRequest, sockets: Sockets<Connection>) {
    this.#app = app
    this.#socket = socket
    this.#request = request
    this.#stream = request.raw.socket
    this.#log = request.log
    this.#sockets = sockets
    this.#tokens = app.config.WS_MESSAGES_PER_SECOND
    this.#presence = new SocketPresence(app.presence, this.clientId, app.config.PRESENCE_UPDATES_PER_SECOND)
    this.#inbox = new Inbox(
      { maxMessages: app.config.WS_MAX_QUEUED_MESSAGES, maxBytes: app.config.WS_MAX_QUEUED_BYTES },
      async raw => { await this.#handle(raw) },
      err => { this.#log.error({ err }, 'websocket message failed') })
    socket.on('pong', () => { this.#alive = true })
    socket.on('message', (data, isBinary) => {
      if (isBinary) {
        this.close(Close.policy, 'binary frames are not accepted')
        return
      }
      this.receive(data.toString())
    })
    socket.on('close', code => { void this.dispose(code) })
    socket.on('error', err => { this.#log.info({ err: err.message }, 'websocket error') })
  }

  /**
   * Starts the connection from the upgrade request's headers (X-Session-Id already checked by the
   * route): with a Bearer token at once, else it waits for an `auth` message. Messages that come
   * meanwhile wait for the header's authentication, in the inbox.
   */
  start (): void {
    const { headers } = this.#request
    const header = headers.authorization
    const token = bearerToken(header)
    const session = headers['x-session-id']
    if (header !== undefined && token === undefined) {
      this.close(Close.unauthenticated, 'malformed Authorization header')
      return
    }
    if (token !== undefined) {
      void this.#inbox.run(async () => { await this.#authenticate(token, typeof session === 'string' ? session : undefined) })
      return
    }
    this.#authTimer = setTimeout(() => { this.close(Close.unauthenticated, 'no auth message in time') }, this.#app.config.WS_AUTH_TIMEOUT_MS)
  }

  /** One heartbeat: a peer that did not answer the previous ping is cut off, else pinged again. */
  heartbeat (): void {
    if (!this.#alive) {
      this.#socket.terminate()
      return
    }
    this.#alive = false
    this.#socket.ping()
  }

  /** Sends a frame unless the client has stopped reading: past the bound it is closed with 1013. */
  send (frame: string): void {
    if (!this.#canSend()) return
    this.#socket.send(frame)
    this.#app.metrics.wsMessagesOut.inc()
  }

  /**
   * Sends the hub's frames (text, already encoded) in one write: the TCP socket is corked
   * around them, so a commit of many changes costs one system call per client, not one per change.
   */
  deliver (frames: readonly Frame[], live?: string): void {
    const held = live === undefined ? undefined : this.#held.get(live)
    if (held !== undefined) {
      held.frames.push(...frames)
      for (const frame of frames) held.bytes += frame.length
      // (bounded as what the socket buffers is)
      if (held.bytes > this.#app.config.WS_MAX_BUFFERED_BYTES) this.close(Close.tryAgainLater, 'client is not reading; resume with since')
      return
    }
    if (!this.#canSend()) return
    this.#stream.cork()
    try {
      for (const frame of frames) this.#socket.send(frame, TEXT)
    } finally {
      this.#stream.uncork()
    }
    this.#app.metrics.wsMessagesOut.inc(frames.length)
  }

  /** Open, and reading: what the client has not taken yet is under the bound, else it is closed with 1013. */
  #canSend (): boolean {
    if (this.#closing || this.#socket.readyState !== this.#socket.OPEN) return false
    if (this.#socket.bufferedAmount > this.#app.config.WS_MAX_BUFFERED_BYTES) {
      this.close(Close.tryAgainLater, 'client is not reading; resume with since')
      return false
    }
    return true
  }

  /** false once closing: a replay to it stops (hub.ts) */
  get open (): boolean {
    return !this.#closing && this.#socket.readyState === this.#socket.OPEN
  }

  /**
   * Resolves once the send buffer is under half its bound (or the socket is going), so replays go
   * at the client's pace. A client that takes nothing for WS_REPLAY_TIMEOUT_MS is closed with
   * 1013: the replay would otherwise hold its inbox, and the subscribe, forever.
   */
  async drained (): Promise<void> {
    const low = this.#app.config.WS_MAX_BUFFERED_BYTES / 2
    const deadline = Date.now() + this.#app.config.WS_REPLAY_TIMEOUT_MS
    while (this.open && this.#socket.bufferedAmount > low) {
      if (Date.now() >= deadline) {
        this.close(Close.tryAgainLater, 'replay timed out: client is not reading; resume with since')
        return
      }
      await new Promise(resolve => setTimeout(resolve, 10))
    }
  }

  /** A frame to this client: one of the server messages of schemas/ws.ts (the AsyncAPI document's). */
  #reply (message: ServerMessage): void {
    this.send(JSON.stringify(message))
  }

  /** An `error` frame: the error's code and message (its details only where `extra` passes them). */
  #error (error: AppError, extra: Record<string, unknown> = {}): void {
    if (error.statusCode >= 500) this.#log.error({ err: error }, 'websocket message failed')
    const shown = publicError(error, this.#app.config.NODE_ENV === 'development')
    this.#reply({ type: 'error', code: shown.code, message: shown.message, ...extra })
  }

  /** Closes with a code; a client that does not take the close frame is cut off shortly after. */
  close (code: number, reason: string): void {
    if (this.#closing) return
    this.#closing = true
    // What still waits is never handled: let it go now, not when the peer finally goes.
    this.#inbox.clear()
    this.#socket.close(code, reason)
    setTimeout(() => { this.#socket.terminate() }, 2_000).unref()
  }

  /** Called once the socket has closed: leaves every channel and stops the timers. */
  async dispose (code: number): Promise<void> {
    clearTimeout(this.#expiryTimer)
    clearTimeout(this.#authTimer)
    void this.#record('ws.disconnect', 200, performance.now() - this.#connectedAt, { closeCode: code })
    await Promise.all([...this.#subscriptions].map(async id => { await this.#drop(id) }))
  }

  /** A token bucket per socket: WS_MESSAGES_PER_SECOND, with a burst of the same size. */
  #allow (): boolean {
    const rate = this.#app.config.WS_MESSAGES_PER_SECOND
    const now = Date.now()
    this.#tokens = Math.min(rate, this.#tokens + (now - this.#lastRefill) * rate / 1000)
    this.#lastRefill = now
    if (this.#tokens < 1) return false
    this.#tokens -= 1
    return true
  }

  /**
   * Messages are handled one at a time, in the order they came (auth before subscribe, an RPC's
   * effects before the next one). While one is handled (a replay waiting for the client, a slow
   * query) the others wait in the inbox, which holds at most WS_MAX_QUEUED_MESSAGES messages and
   * WS_MAX_QUEUED_BYTES bytes: a message past either closes the socket with 1013, as a client
   * that stops reading is, and what waited is dropped unhandled. The rate limit is checked first:
   * a message over it is answered at once and never waits.
   */
  receive (raw: string): void {
    if (this.#closing) return
    if (!this.#allow()) {
      this.#error(errors.messageRateLimited())
      return
    }
    if (!this.#inbox.push(raw)) this.close(Close.tryAgainLater, 'too many messages waiting; slow down, then resume with since')
  }

  async #handle (raw: string): Promise<void> {
    if (this.#closing) return
    const parsed = parseClientMessage(raw)
    if ('error' in parsed) {
      this.#error(parsed.error, { details: parsed.error.details })
      return
    }
    const { message } = parsed
    if (message.type === 'ping') {
      this.#reply({ type: 'pong', timestamp: new Date().toISOString() })
      return
    }
    if (message.type === 'auth') {
      await this.#authenticate(message.token, message.sessionId)
      return
    }
    const actor = this.#actor
    if (actor === null) {
      this.#error(errors.unauthenticated('send { type: "auth", token } first'))
      return
    }
    this.#app.activity.reads?.message(actor, message, this.clientId) // ACTIVITY_LOG_READS
    switch (message.type) {
      case 'subscribe': return await this.#subscribe(actor, message.channel, message.since)
      case 'unsubscribe': return await this.#unsubscribe(parseChannel(message.channel))
      case 'broadcast': return await this.#broadcast(actor, message.channel, message.data)
      case 'presence.set': return this.#setPresence(actor, message.channel, message.state)
      case 'rpc': return await this.#rpc(actor, message.id, message.method, message.params ?? {})
    }
  }

  async #rpc (actor: Actor, id: string | number, method: string, params: Record<string, unknown>): Promise<void> {
    const { files, searchService: search, snapshots, config } = this.#app
    const admit = async (): Promise<void> => { await this.#app.chargeUser(this.#request, actor) }
    const context = { files, search, snapshots, actor, log: this.#log, exposeInternal: config.NODE_ENV === 'development', admit }
    this.#reply(await callRpc(context, id, method, params))
  }

  /** Closes with 4401 when the token expires (never for a token without `exp`). */
  #expireAt (expiresAt: number): void {
    if (!Number.isFinite(expiresAt)) return
    const ttl = Math.max(0, expiresAt - Date.now())
    // setTimeout holds at most 2^31-1 ms (24.8 days); outside tokens may live longer: wait again.
    const wait = Math.min(ttl, 2 ** 31 - 1)
    this.#expiryTimer = setTimeout(() => {
      if (wait < ttl) this.#expireAt(expiresAt)
      else this.close(Close.unauthenticated, 'TOKEN_EXPIRED')
    }, wait)
    this.#expiryTimer.unref()
  }

  async #authenticate (token: string, sessionId: string | undefined): Promise<void> {
    let verified: Verified
    try {
      verified = await this.#app.verifyAccessToken(token, sessionId)
    } catch (err) {
      this.close(Close.unauthenticated, err instanceof AppError ? err.code : 'UNAUTHENTICATED')
      return
    }
    if (this.#actor !== null && this.#actor.userId !== verified.userId) {
      this.close(Close.unauthenticated, 'a socket cannot change user')
      return
    }
    // Gone while the token was verified: it must not take a place that its close already gave back.
    if (!this.open) return
    const first = this.#actor === null
    if (first && !this.#sockets.claim(this, verified.userId)) {
      this.close(Close.tryAgainLater, 'too many sockets for this user (WS_MAX_SOCKETS_PER_USER)')
      return
    }
    const { expiresAt, tokenSessionId, ...actor } = verified
    this.#tokenSessionId = tokenSessionId
    this.#actor = first ? actor : { ...actor, sessionId: this.#actor?.sessionId ?? actor.sessionId }
    clearTimeout(this.#authTimer)
    clearTimeout(this.#expiryTimer)
    this.#expireAt(expiresAt)
    if (first) {
      this.#connectedAt = performance.now()
      this.#reply({
        type: 'connected',
        clientId: this.clientId,
        serverTime: new Date().toISOString(),
        config: { heartbeatMs: this.#app.config.WS_HEARTBEAT_MS, maxPayload: this.#app.config.WS_MAX_PAYLOAD }
      })
      await this.#record('ws.connect', 101, 0)
    }
  }

  /** Connects and disconnects go into the session's activity log. */
  async #record (type: string, status: number, durationMs: number, details?: Record<string, unknown>): Promise<void> {
    if (this.#actor === null) return
    await this.#app.activity.record({
      sessionId: this.#actor.sessionId,
      userId: this.#actor.userId,
      type,
      status,
      durationMs,
      details: { clientId: this.clientId, ...details }
    }, err => { this.#log.warn({ err }, 'activity entry failed') })
  }

  /** `channel` as the client wrote it, which its errors name */
  async #subscribe (actor: Actor, channel: string, since: number | undefined): Promise<void> {
    const workspaceId = parseChannel(channel)
    this.#app.metrics.wsSubscriptions.inc({ resume: String(since !== undefined) })
    if (!await this.#mayRead(actor, workspaceId, channel)) return
    const { fanout, presence } = this.#app
    if (this.#subscriptions.has(workspaceId)) {
      // Subscribing again keeps the socket's presence; it gets the members again after `subscribed`.
      presence.unwatch(workspaceId, this)
      await fanout.leave(workspaceId, this)
    }
    this.#subscriptions.add(workspaceId)
    // Live events that reach it before its `subscribed` is sent wait for it (`deliver`).
    this.#held.set(workspaceId, { frames: [], bytes: 0 })
    let joined: { revision: number, reset: boolean }
    try {
      joined = await fanout.join(workspaceId, this, since)
    } catch (err) {
      // Redis (or the database) is down: the client retries the subscribe later with `since`.
      await this.#drop(workspaceId).catch(() => {})
      this.#log.warn({ err, workspaceId }, 'subscribe failed')
      this.#error(errors.unavailable('cannot subscribe right now; retry with since'), { channel })
      return
    }
    const { revision, reset } = joined
    // Closed (or unsubscribed) while joining: dispose() could not take it off the channel yet.
    if (!this.#subscriptions.has(workspaceId)) {
      await this.#drop(workspaceId)
      return
    }
    // Removed from the workspace between the check above and now: the removal's announcement
    // may have gone out before this instance listened on the channel, but the removal committed
    // before it was announced, so reading access again now sees it.
    if (!await this.#mayRead(actor, workspaceId, channel)) {
      this.#held.delete(workspaceId)
      if (this.#subscriptions.has(workspaceId)) await this.#drop(workspaceId)
      return
    }
    // `subscribed`, then the current members, then the live events held meanwhile, then every
    // presence change and live event: nothing between them.
    try {
      await presence.watch(workspaceId, this, members => {
        const held = this.#held.get(workspaceId)?.frames ?? []
        this.#held.delete(workspaceId)
        if (!this.#subscriptions.has(workspaceId) || !this.open) return false
        const name = channelName(workspaceId)
        this.#reply({ type: 'subscribed', channel: name, revision, ...(reset ? { reset: true } : {}) })
        this.#reply({ type: 'presence.members', channel: name, members })
        if (held.length > 0) this.deliver(held)
        return true
      })
    } catch (err) {
      // The members could not be read (Redis is down): as a failed join, not a subscription that
      // holds its live events for ever.
      await this.#drop(workspaceId).catch(() => {})
      this.#log.warn({ err, workspaceId }, 'subscribe failed')
      this.#error(errors.unavailable('cannot subscribe right now; retry with since'), { channel })
    }
  }

  /** Ends a subscription here: off the channel, its presence events and its presence (a `leave` for the others). */
  async #drop (workspaceId: string): Promise<void> {
    this.#subscriptions.delete(workspaceId)
    this.#held.delete(workspaceId)
    this.#app.presence.unwatch(workspaceId, this)
    await Promise.all([this.#app.fanout.leave(workspaceId, this), this.#presence.leave(workspaceId)])
  }

  /**
   * presence.set: the socket's state on a subscribed channel, at most PRESENCE_MAX_BYTES
   * serialised and PRESENCE_MAX_DEPTH deep; applied at most PRESENCE_UPDATES_PER_SECOND times a
   * second (the excess is coalesced, see SocketPresence).
   */
  #setPresence (actor: Actor, channel: string, state: Record<string, unknown>): void {
    const workspaceId = parseChannel(channel)
    if (!this.#subscriptions.has(workspaceId)) {
      this.#error(errors.notSubscribed(channelName(workspaceId)), { channel })
      return
    }
    // The depth first: a deeply nested state is refused without walking (or serialising) all of it.
    const deep = depth(state, PRESENCE_MAX_DEPTH + 1)
    const size = deep > PRESENCE_MAX_DEPTH ? 0 : Buffer.byteLength(JSON.stringify(state))
    const max = this.#app.config.PRESENCE_MAX_BYTES
    if (size > max || deep > PRESENCE_MAX_DEPTH) {
      this.#error(errors.presenceTooLarge(size, max, deep, PRESENCE_MAX_DEPTH), { channel })
      return
    }
    this.#presence.set(workspaceId, { sessionId: actor.sessionId, userId: actor.userId, state })
  }

  /** Whether the actor may read the workspace; if not, says so to the client (an `error` on `channel`). */
  async #mayRead (actor: Actor, workspaceId: string, channel: string): Promise<boolean> {
    try {
      await requireRead(this.#app.db, actor, workspaceId)
      return true
    } catch (err) {
      const e = toAppError(err)
      // FORBIDDEN (no file.read) and not-a-member both read as "no such workspace" here.
      this.#error(e.statusCode === 403 ? errors.workspaceNotFound(workspaceId) : e, { channel })
      return false
    }
  }

  async #unsubscribe (workspaceId: string): Promise<void> {
    if (this.#subscriptions.has(workspaceId)) await this.#drop(workspaceId)
    this.#reply({ type: 'unsubscribed', channel: channelName(workspaceId) })
  }

  async #broadcast (actor: Actor, channel: string, data: unknown): Promise<void> {
    const workspaceId = parseChannel(channel)
    if (!this.#subscriptions.has(workspaceId)) {
      this.#error(errors.validation('subscribe to the channel before broadcasting on it'), { channel })
      return
    }
    const frame = JSON.stringify({
      type: 'broadcast',
      channel: channelName(workspaceId),
      data,
      from: { userId: actor.userId, sessionId: actor.sessionId },
      timestamp: new Date().toISOString()
    })
    await this.#app.fanout.publishBroadcast(workspaceId, frame, this.clientId)
  }

  /** A session ended (logout, learnt by this instance): its sockets close with 4401. */
  sessionEnded (sessionId: string): void {
    if (this.#tokenSessionId === sessionId) this.close(Close.unauthenticated, 'SESSION_ENDED')
  }

  /**
   * Membership changed (announced by any instance): if this socket's user is among `userIds`, it
   * ends the subscription when the workspace is no longer readable (4403 when none is left).
   */
  async accessChanged (workspaceId: string, userIds: string[]): Promise<void> {
    const actor = this.#actor
    if (actor === null || !userIds.includes(actor.userId) || !this.#subscriptions.has(workspaceId)) return
    try {
      await requireRead(this.#app.db, actor, workspaceId)
    } catch {
      // Losing access ends that subscription; a socket left with none is closed with 4403.
      const lost = errors.accessLost(workspaceId)
      if (this.#subscriptions.size <= 1) {
        this.close(Close.forbidden, lost.message)
        return
      }
      this.#error(lost, { channel: channelName(workspaceId) })
      await this.#unsubscribe(workspaceId)
    }
  }
}

/** How deep objects and arrays nest in a JSON value (a scalar is 0, `{}` is 1), counted up to `limit`. */
function depth (value: unknown, limit: number): number {
  if (typeof value !== 'object' || value === null) return 0
  if (limit <= 1) return 1
  let deepest = 0
  for (const v of Object.values(value)) deepest = Math.max(deepest, depth(v, limit - 1))
  return deepest + 1
}
