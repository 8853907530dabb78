import { randomUUID } from 'node:crypto'
import type { Duplex } from 'node:stream'
import type { WebSocket } from 'ws'
import type { ValidateFunction } from 'ajv'
import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import type { Actor } from '../accounts/auth.js'
import { AppError, errors, schemaErrors, toAppError } from '../core/errors.js'
import { channelName, type Frame, type Subscriber } from './hub.js'
import { requireRead } from '../accounts/workspaces.js'
import { makeAjv } from '../core/validation.js'
import { MutationType } from '../mutations/activity.js'
import { ClientMessage, RpcParams, type RpcMethod } from '../../schemas/ws.js'
import type { Static } from '@sinclair/typebox'

/** WebSocket close codes this server uses. */
export const Close = {
  goingAway: 1001,
  policy: 1008,
  tooBig: 1009,
  tryAgainLater: 1013,
  unauthenticated: 4401,
  forbidden: 4403
} as const

/** `send` options for a Buffer that holds text (the fan-out's frames) */
const TEXT = { binary: false } as const

/** RPC methods that mutate, with the activity type of their REST twin (failures are logged too). */
const MUTATIONS: Partial<Record<string, MutationType>> = {
  'files.write': MutationType.write,
  'files.delete': MutationType.delete,
  'operations.apply': MutationType.operation,
  'operations.batch': MutationType.batch
}

const ajv = makeAjv()
type Message = ClientMessage
const messageValidators = new Map<string, ValidateFunction>(
  ClientMessage.anyOf.map(schema => [schema.properties.type.const, ajv.compile(schema)])
)
const rpcValidators = new Map<string, ValidateFunction>(
  Object.entries(RpcParams).map(([method, schema]) => [method, ajv.compile(schema)])
)

/** Validates (and fills defaults into) an RPC method's params. */
function checkParams<K extends RpcMethod> (method: K, params: unknown): Static<(typeof RpcParams)[K]> {
  const validate = rpcValidators.get(method)
  if (validate === undefined) throw errors.internal()
  if (!validate(params)) throw validationError(validate)
  return params as Static<(typeof RpcParams)[K]>
}

function validationError (validate: ValidateFunction): AppError {
  const first = validate.errors?.[0]
  return schemaErrors(`${first?.instancePath ?? ''} ${first?.message ?? 'invalid'}`.trim(), validate.errors ?? [])
}

/**
 * One client socket: authentication, its subscriptions, and the messages of the contract's
 * WebSocket section. Frames to the client go through `send`, which enforces the send-buffer bound.
 */
export class Connection implements Subscriber {
  readonly clientId = randomUUID()
  readonly sent = new Map<string, number>()
  readonly subscriptions = new Set<string>()
  actor: Actor | null = null
  alive = true
  #closing = false
  #connectedAt = 0
  #inbox: Promise<void> = Promise.resolve()
  #expiryTimer: NodeJS.Timeout | undefined
  #authTimer: NodeJS.Timeout | undefined
  #tokens: number
  #lastRefill = Date.now()
  readonly #socket: WebSocket
  /** the TCP connection under the WebSocket, corked around a batch of frames */
  readonly #stream: Duplex
  readonly #app: FastifyInstance
  readonly #log: FastifyBaseLogger

  constructor (app: FastifyInstance, socket: WebSocket, stream: Duplex, log: FastifyBaseLogger) {
    this.#app = app
    this.#socket = socket
    this.#stream = stream
    this.#log = log
    this.#tokens = app.config.WS_MESSAGES_PER_SECOND
  }

  /** Starts the connection: with a header token at once, else waits for an `auth` message. */
  async start (headerToken: string | undefined, sessionHeader: string | undefined): Promise<void> {
    if (headerToken !== undefined) {
      await this.#authenticate(headerToken, sessionHeader)
      return
    }
    this.#authTimer = setTimeout(() => { this.close(Close.unauthenticated, 'no auth message in time') }, this.#app.config.WS_AUTH_TIMEOUT_MS)
  }

  /** Sends a frame unless the client has stopped reading: past the bound it is closed with 1013. */
  send (frame: string): void {
    if (!this.#canSend()) return
    this.#socket.send(frame)
    this.#app.metrics.wsMessagesOut.inc()
  }

  /**
   * Sends the fan-out's frames (text, already encoded) in one write: the TCP socket is corked
   * around them, so a commit of many changes costs one system call per client, not one per change.
   */
  deliver (frames: readonly Frame[]): void {
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

  /** Resolves once the send buffer is under half its bound (or the socket is going), so replays go at the client's pace. */
  async drained (): Promise<void> {
    const low = this.#app.config.WS_MAX_BUFFERED_BYTES / 2
    while (!this.#closing && this.#socket.readyState === this.#socket.OPEN && this.#socket.bufferedAmount > low) {
      await new Promise(resolve => setTimeout(resolve, 10))
    }
  }

  #reply (message: Record<string, unknown>): void {
    this.send(JSON.stringify(message))
  }

  #error (code: string, message: string, extra: Record<string, unknown> = {}): void {
    this.#reply({ type: 'error', code, message, ...extra })
  }

  /** Closes with a code; a client that does not take the close frame is cut off shortly after. */
  close (code: number, reason: string): void {
    if (this.#closing) return
    this.#closing = true
    this.#socket.close(code, reason)
    setTimeout(() => { this.#socket.terminate() }, 2_000).unref()
  }

  /** Called once the socket has closed: leaves every channel and stops the timers. */
  async dispose (code: number): Promise<void> {
    clearTimeout(this.#expiryTimer)
    clearTimeout(this.#authTimer)
    void this.#record('ws.disconnect', 200, performance.now() - this.#connectedAt, { closeCode: code })
    const left = [...this.subscriptions]
    this.subscriptions.clear()
    await Promise.all(left.map(async id => { await this.#app.fanout.leave(id, this) }))
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
   * effects before the next one); the rate limit bounds how many can wait.
   */
  receive (raw: string): void {
    if (!this.#allow()) {
      this.#error('RATE_LIMITED', 'too many messages; slow down')
      return
    }
    this.#inbox = this.#inbox.then(() => this.#handle(raw)).catch(err => { this.#log.error({ err }, 'websocket message failed') })
  }

  async #handle (raw: string): Promise<void> {
    if (this.#closing) return
    let parsed: unknown
    try {
      parsed = JSON.parse(raw)
    } catch {
      this.#error('VALIDATION_FAILED', 'message is not valid JSON')
      return
    }
    const type = typeof parsed === 'object' && parsed !== null && 'type' in parsed ? (parsed as { type: unknown }).type : undefined
    const validate = typeof type === 'string' ? messageValidators.get(type) : undefined
    if (validate === undefined) {
      this.#error('VALIDATION_FAILED', `unknown message type ${JSON.stringify(type ?? null)}`)
      return
    }
    if (!validate(parsed)) {
      const err = validationError(validate)
      this.#error(err.code, err.message, { details: err.details })
      return
    }
    const message = parsed as Message
    if (message.type === 'ping') {
      this.#reply({ type: 'pong', timestamp: new Date().toISOString() })
      return
    }
    if (message.type === 'auth') {
      await this.#authenticate(message.token, message.sessionId)
      return
    }
    const actor = this.actor
    if (actor === null) {
      this.#error('UNAUTHENTICATED', 'send { type: "auth", token } first')
      return
    }
    switch (message.type) {
      case 'subscribe': return await this.#subscribe(actor, message.channel, message.since)
      case 'unsubscribe': return await this.#unsubscribe(message.channel)
      case 'broadcast': return await this.#broadcast(actor, message.channel, message.data)
      case 'rpc': return await this.#rpc(actor, message.id, message.method, message.params ?? {})
    }
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
    let verified: Actor & { expiresAt: number }
    try {
      verified = await this.#app.verifyAccessToken(token, sessionId)
    } catch (err) {
      this.close(Close.unauthenticated, err instanceof AppError ? err.code : 'UNAUTHENTICATED')
      return
    }
    if (this.actor !== null && this.actor.userId !== verified.userId) {
      this.close(Close.unauthenticated, 'a socket cannot change user')
      return
    }
    const first = this.actor === null
    const { expiresAt, ...actor } = verified
    this.actor = first ? actor : { ...actor, sessionId: this.actor?.sessionId ?? actor.sessionId }
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
    if (this.actor === null) return
    await this.#app.activity.record({
      sessionId: this.actor.sessionId,
      userId: this.actor.userId,
      type,
      status,
      durationMs,
      details: { clientId: this.clientId, ...details }
    }, err => { this.#log.warn({ err }, 'activity entry failed') })
  }

  async #subscribe (actor: Actor, channel: string, since: number | undefined): Promise<void> {
    const workspaceId = channel.slice('workspace:'.length).toLowerCase()
    try {
      await requireRead(this.#app.db, actor, workspaceId)
    } catch (err) {
      const e = toAppError(err)
      // FORBIDDEN (no file.read) and not-a-member both read as "no such workspace" here.
      this.#error(e.statusCode === 403 ? 'WORKSPACE_NOT_FOUND' : e.code, e.statusCode === 403 ? `workspace ${workspaceId} not found` : e.message, { channel })
      return
    }
    if (this.subscriptions.has(workspaceId)) await this.#app.fanout.leave(workspaceId, this)
    this.subscriptions.add(workspaceId)
    let joined: { revision: number, reset: boolean }
    try {
      joined = await this.#app.fanout.join(workspaceId, this, since)
    } catch (err) {
      // Redis (or the database) is down: the client retries the subscribe later with `since`.
      this.subscriptions.delete(workspaceId)
      await this.#app.fanout.leave(workspaceId, this).catch(() => {})
      this.#log.warn({ err, workspaceId }, 'subscribe failed')
      this.#error('UNAVAILABLE', 'cannot subscribe right now; retry with since', { channel })
      return
    }
    const { revision, reset } = joined
    // Closed (or unsubscribed) while joining: dispose() could not take it off the channel yet.
    if (!this.subscriptions.has(workspaceId)) {
      await this.#app.fanout.leave(workspaceId, this)
      return
    }
    this.#reply({ type: 'subscribed', channel: channelName(workspaceId), revision, ...(reset ? { reset: true } : {}) })
  }

  async #unsubscribe (channel: string): Promise<void> {
    const workspaceId = channel.slice('workspace:'.length).toLowerCase()
    if (this.subscriptions.delete(workspaceId)) await this.#app.fanout.leave(workspaceId, this)
    this.#reply({ type: 'unsubscribed', channel: channelName(workspaceId) })
  }

  async #broadcast (actor: Actor, channel: string, data: unknown): Promise<void> {
    const workspaceId = channel.slice('workspace:'.length).toLowerCase()
    if (!this.subscriptions.has(workspaceId)) {
      this.#error('VALIDATION_FAILED', 'subscribe to the channel before broadcasting on it', { channel })
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

  /** Ends the subscriptions whose workspace this user can no longer read (4403 when none is left). */
  async recheckAccess (workspaceId: string): Promise<void> {
    if (this.actor === null || !this.subscriptions.has(workspaceId)) return
    try {
      await requireRead(this.#app.db, this.actor, workspaceId)
    } catch {
      // Losing access ends that subscription; a socket left with none is closed with 4403.
      if (this.subscriptions.size <= 1) {
        this.close(Close.forbidden, `access to workspace ${workspaceId} was lost`)
        return
      }
      const channel = channelName(workspaceId)
      this.#error('WORKSPACE_NOT_FOUND', `access to workspace ${workspaceId} was lost`, { channel })
      await this.#unsubscribe(channel)
    }
  }

  async #rpc (actor: Actor, id: string | number, method: string, params: Record<string, unknown>): Promise<void> {
    const started = performance.now()
    try {
      const result = await this.#call(actor, method, params)
      this.#reply({ type: 'rpc.result', id, result })
    } catch (err) {
      const type = MUTATIONS[method]
      if (type !== undefined) {
        const { workspaceId, path, type: op } = params
        this.#app.files.rejected(actor, {
          type,
          workspaceId: typeof workspaceId === 'string' ? workspaceId : null,
          op: typeof op === 'string' ? op : null,
          path: typeof path === 'string' ? path : null
        }, err, performance.now() - started)
      }
      const e = toAppError(err)
      if (e.statusCode >= 500) this.#log.error({ err, method }, 'rpc failed')
      const message = e.statusCode === 500 && this.#app.config.NODE_ENV !== 'development' ? 'internal server error' : e.message
      this.#reply({ type: 'rpc.error', id, error: { code: e.code, message, ...(e.details === undefined ? {} : { details: e.details }) } })
    }
  }

  /** RPC methods mirror the REST routes and call the same service functions. */
  async #call (actor: Actor, method: string, params: Record<string, unknown>): Promise<unknown> {
    const files = this.#app.files
    const opId = (p: { idempotencyKey?: string }) => ({ opId: p.idempotencyKey ?? null })
    switch (method) {
      case 'files.read': {
        const { format: _format, ...p } = checkParams('files.read', params)
        return (await files.read(actor, p)).entry
      }
      case 'files.write': {
        const { idempotencyKey, ...p } = checkParams('files.write', params)
        return (await files.write(actor, p, opId({ idempotencyKey }))).body
      }
      case 'files.delete': {
        const { idempotencyKey, ...p } = checkParams('files.delete', params)
        return (await files.remove(actor, p, opId({ idempotencyKey }))).body
      }
      case 'operations.apply': {
        const { workspaceId, idempotencyKey, ...op } = checkParams('operations.apply', params)
        return (await files.apply(actor, workspaceId, op, opId({ idempotencyKey }))).body
      }
      case 'operations.batch': {
        const p = checkParams('operations.batch', params)
        return (await files.batch(actor, p.workspaceId, p.operations, opId(p))).body
      }
      case 'tree.list': {
        const { workspaceId, ...query } = checkParams('tree.list', params)
        return await files.tree(actor, workspaceId, query)
      }
      case 'changes.list': {
        const p = checkParams('changes.list', params)
        return await files.changes(actor, p.workspaceId, p.since, p.limit)
      }
      default: throw errors.methodNotFound(method)
    }
  }
}
