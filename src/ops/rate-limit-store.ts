/** The rate limiter's shared store: a fixed-window counter in Redis, one Lua round trip per check. */
import type { FastifyRateLimitStore, FastifyRateLimitStoreCtor } from '@fastify/rate-limit'
import type { Redis } from 'ioredis'
import { errors } from '../core/errors.js'

/**
 * Fixed-window counter in Redis, shared by every instance: INCR, and PEXPIRE when the window
 * opens (or the key somehow lost its expiry). Returns the count and the window's remaining ms.
 */
const WINDOW_SCRIPT = `
local current = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if current == 1 or ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return { current, ttl }`

type WindowCommand = (key: string, windowMs: number) => Promise<[number, number]>

export interface RedisWindowStoreOptions {
  /** prepended to every key (RATE_LIMIT_KEY_PREFIX) */
  prefix: string
  /** a failed check lets the request through (true) or answers 503 UNAVAILABLE */
  failOpen: boolean
  /** called on every failed check, before the request is let through or refused */
  onError: (err: Error) => void
}

/**
 * A @fastify/rate-limit store on `client`. Give it a connection of its own with no offline queue
 * and a short command timeout, so that while Redis is down each check fails at once instead of
 * waiting: the request is then let through (`failOpen`) or answered 503 UNAVAILABLE.
 */
export function redisWindowStore (client: Redis, { prefix, failOpen, onError }: RedisWindowStoreOptions): FastifyRateLimitStoreCtor {
  client.defineCommand('workbenchRateWindow', { numberOfKeys: 1, lua: WINDOW_SCRIPT })
  const command = (client as unknown as { workbenchRateWindow: WindowCommand }).workbenchRateWindow.bind(client)
  return class RedisWindowStore implements FastifyRateLimitStore {
    incr (key: string, callback: (error: Error | null, result?: { current: number, ttl: number }) => void, timeWindow: number): void {
      command(prefix + key, timeWindow).then(
        ([current, ttl]) => { callback(null, { current, ttl }) },
        (err: Error) => {
          onError(err)
          callback(failOpen ? err : errors.unavailable('rate limiting is unavailable (its store does not answer)'))
        })
    }

    child (): FastifyRateLimitStore { return this }
  }
}
