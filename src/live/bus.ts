import { Type, type Static } from '@sinclair/typebox'
import type { Redis } from 'ioredis'
import { Change } from '../../schemas/files.js'
import { makeAjv } from '../core/validation.js'

/**
 * The bus between instances: one channel per workspace, over Redis pub/sub or, in embedded mode,
 * an in-process map. It carries at most once: the hub makes up for what is lost (see hub.ts).
 */

/** What carries raw messages between instances. */
export interface Transport {
  publish: (channel: string, message: string) => Promise<void>
  /** Resolves once messages on `channel` are really being received. */
  subscribe: (channel: string, onMessage: (message: string) => void) => Promise<void>
  unsubscribe: (channel: string) => Promise<void>
}

/** One socket's presence entry (src/live/presence.ts): its session, user, state, when set, until when it lives. */
export const PresenceEntry = Type.Object({
  sessionId: Type.String(),
  userId: Type.String(),
  state: Type.Record(Type.String(), Type.Unknown()),
  at: Type.Number(),
  exp: Type.Number()
})
export type PresenceEntry = Static<typeof PresenceEntry>

/** What instances say to each other on a workspace's bus channel. */
export const BusMessage = Type.Union([
  Type.Object({ t: Type.Literal('changes'), changes: Type.Array(Change, { minItems: 1 }) }),
  Type.Object({ t: Type.Literal('broadcast'), frame: Type.String(), fromClient: Type.String() }),
  Type.Object({ t: Type.Literal('access'), userIds: Type.Array(Type.String()) }),
  // a socket's presence entry set (entry) or gone (null); `field` is the socket's clientId, `from` the instance's id
  Type.Object({ t: Type.Literal('presence'), from: Type.String(), field: Type.String(), sessionId: Type.String(), entry: Type.Union([PresenceEntry, Type.Null()]) })
])
export type BusMessage = Static<typeof BusMessage>

const isBusMessage = makeAjv().compile<BusMessage>(BusMessage)

/**
 * A bus message from its text; undefined for anything else on the channel (another program, a
 * bad deploy), which must be dropped, never forwarded.
 */
export function parseBusMessage (raw: string): BusMessage | undefined {
  let message: unknown
  try {
    message = JSON.parse(raw)
  } catch {
    return undefined
  }
  return isBusMessage(message) ? message : undefined
}

/** A workspace's bus channel; prefixed so that it cannot clash with other users of the Redis. */
export const busChannel = (workspaceId: string): string => `wb:workspace:${workspaceId}`

/** Messages between instances through Redis pub/sub, on a connection used for nothing else. */
export function redisTransport (cmd: Redis, sub: Redis): Transport {
  const handlers = new Map<string, (message: string) => void>()
  sub.on('message', (channel: string, message: string) => handlers.get(channel)?.(message))
  return {
    publish: async function publish (channel, message) { await cmd.publish(channel, message) },
    subscribe: async function subscribe (channel, onMessage) {
      handlers.set(channel, onMessage)
      await sub.subscribe(channel)
    },
    unsubscribe: async function unsubscribe (channel) {
      handlers.delete(channel)
      await sub.unsubscribe(channel)
    }
  }
}

/**
 * The embedded default: one process, so the bus is a map of handlers. Delivery is deferred to
 * the next turn, as a message coming back from Redis would be, so the hub sees the same ordering.
 */
export function localTransport (): Transport {
  const handlers = new Map<string, (message: string) => void>()
  return {
    publish: async function publish (channel, message) {
      const handler = handlers.get(channel)
      if (handler !== undefined) setImmediate(handler, message)
    },
    subscribe: async function subscribe (channel, onMessage) { handlers.set(channel, onMessage) },
    unsubscribe: async function unsubscribe (channel) { handlers.delete(channel) }
  }
}
