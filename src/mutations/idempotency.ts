import { createHash } from 'node:crypto'
import { sql } from 'kysely'
import type { Executor, Trx } from '../db/schema.js'
import { errors, storedError } from '../core/errors.js'

/**
 * Idempotency-Key: the first response to a mutating request is kept for 24 h and replayed to a
 * retry with the same key, user and request, which applies nothing again.
 *
 * The key is claimed inside the write's own transaction and its response stored there too, so a
 * key is never left half-done: a concurrent retry (on any instance) blocks on the key's unique
 * index until the first request commits, then replays its response; if the first rolls back, the
 * retry runs as if it were first.
 */

export const KEY_TTL_HOURS = 24

export interface StoredResponse {
  statusCode: number
  body: unknown
}

/** Thrown from inside the transaction when the key turned out to be taken: roll back and replay. */
export class Replay extends Error {
  constructor (readonly response: StoredResponse) { super('idempotent replay') }
}

/** A stable hash of what the request asks for: the same key with a different request is 422. */
export function requestHash (parts: unknown): string {
  return createHash('sha256').update(stableJson(parts)).digest('hex')
}

function stableJson (value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined).sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0)
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableJson(v)}`).join(',')}}`
  }
  return JSON.stringify(value) ?? 'null'
}

/** The stored response for this key, if any (422 when it was for a different request). */
export async function findResponse (db: Executor, userId: string, key: string, hash: string): Promise<StoredResponse | undefined> {
  const row = await db.selectFrom('idempotency_keys').select(['request_hash', 'status_code', 'body'])
    .where('user_id', '=', userId).where('key', '=', key)
    .where('created_at', '>', sql<Date>`now() - make_interval(hours => ${KEY_TTL_HOURS})`)
    .executeTakeFirst()
  if (row === undefined) return undefined
  if (row.request_hash !== hash) throw errors.idempotencyKeyReused(key)
  // A failure is replayed as the same error, thrown: callers answer it as they answered the first
  // (REST as that status and body, RPC as rpc.error), not as a success carrying an error body.
  if (row.status_code >= 400) throw storedError(row.status_code, row.body)
  return { statusCode: row.status_code, body: row.body }
}

/** Claims the key inside the write transaction; throws Replay (or 422) if it is already taken. */
export async function claimKey (trx: Trx, userId: string, key: string, hash: string): Promise<void> {
  // An expired key may be taken again.
  await trx.deleteFrom('idempotency_keys').where('user_id', '=', userId).where('key', '=', key)
    .where('created_at', '<=', sql<Date>`now() - make_interval(hours => ${KEY_TTL_HOURS})`).execute()
  const claimed = await trx.insertInto('idempotency_keys')
    .values({ user_id: userId, key, request_hash: hash, status_code: 0, body: 'null' })
    .onConflict(oc => oc.columns(['user_id', 'key']).doNothing())
    .returning('key').executeTakeFirst()
  if (claimed !== undefined) return
  const stored = await findResponse(trx, userId, key, hash)
  if (stored === undefined) throw errors.idempotencyInProgress()
  throw new Replay(stored)
}

/** Records the response of a claimed key (in the same transaction) or of a failed request. */
export async function storeResponse (db: Executor, userId: string, key: string, hash: string, response: StoredResponse): Promise<void> {
  await db.insertInto('idempotency_keys')
    .values({ user_id: userId, key, request_hash: hash, status_code: response.statusCode, body: JSON.stringify(response.body) })
    .onConflict(oc => oc.columns(['user_id', 'key']).doUpdateSet({ status_code: response.statusCode, body: JSON.stringify(response.body) })
      .where('idempotency_keys.request_hash', '=', hash).where('idempotency_keys.status_code', '=', 0))
    .execute()
}

/** A claimed key's response, to be stored with others (`storeResponses`). */
export interface KeyedResponse { userId: string, key: string, hash: string, response: StoredResponse }

/** The responses of keys claimed in this transaction, in one statement (a group's; at most one per key). */
export async function storeResponses (trx: Trx, responses: KeyedResponse[]): Promise<void> {
  if (responses.length === 0) return
  await trx.insertInto('idempotency_keys')
    .values(responses.map(r => ({ user_id: r.userId, key: r.key, request_hash: r.hash, status_code: r.response.statusCode, body: JSON.stringify(r.response.body) })))
    .onConflict(oc => oc.columns(['user_id', 'key']).doUpdateSet(eb => ({ status_code: eb.ref('excluded.status_code'), body: eb.ref('excluded.body') }))
      .where('idempotency_keys.request_hash', '=', eb => eb.ref('excluded.request_hash')).where('idempotency_keys.status_code', '=', 0))
    .execute()
}
