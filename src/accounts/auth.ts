import { createCipheriv, createDecipheriv, createHash, randomBytes, randomUUID, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto'
import { sql } from 'kysely'
import type { Db, Executor } from '../db/schema.js'
import { errors } from '../core/errors.js'
import type { AuthResult, User } from '../../schemas/auth.js'
import type { SessionRegistry } from './sessions.js'

/** Who makes a call: the token's user and permissions, and the session the call belongs to. */
export interface Actor {
  userId: string
  sessionId: string
  permissions: string[]
}

/**
 * A verified access token's actor: `sessionId` is the session the call is recorded under
 * (X-Session-Id overrides the token's per request), `tokenSessionId` the token's own (which
 * logout ends), `expiresAt` its `exp` in ms.
 */
export type Verified = Actor & { expiresAt: number, tokenSessionId: string }

export interface AccessClaims {
  sub: string
  sid: string
  permissions: string[]
}

export const DEFAULT_PERMISSIONS = ['file.read', 'file.write']
/** GET /v1/stats: granted with `npm run admin` (src/accounts/admin.ts), or by an outside identity provider's token. */
export const ADMIN_PERMISSION = 'admin'

export const ACCESS_TOKEN_SECONDS = 15 * 60
const REFRESH_TOKEN_MS = 30 * 24 * 3600 * 1000

export function requirePermission (actor: Actor, permission: string): void {
  if (!actor.permissions.includes(permission)) throw errors.forbidden(`the token lacks the ${permission} permission`)
}

// --- passwords: scrypt, self-describing so the parameters can change later ---

/** scrypt's parameters but N, which is 2^cost (PASSWORD_HASH_COST, by default 14: N = 16384). */
const SCRYPT = { r: 8, p: 1, keylen: 64 }

function scrypt (password: string, salt: Buffer, keylen: number, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scryptCb(password, salt, keylen, options, (err, key) => { if (err) reject(err); else resolve(key) })
  })
}

export async function hashPassword (password: string, cost: number): Promise<string> {
  const salt = randomBytes(16)
  const N = 2 ** cost
  const key = await scrypt(password, salt, SCRYPT.keylen, { N, r: SCRYPT.r, p: SCRYPT.p })
  return `scrypt$${N}$${SCRYPT.r}$${SCRYPT.p}$${salt.toString('base64url')}$${key.toString('base64url')}`
}

/** Checks against the stored hash's own parameters: a change of cost affects new passwords only. */
export async function verifyPassword (password: string, stored: string): Promise<boolean> {
  const [scheme, n, r, p, salt, key] = stored.split('$')
  if (scheme !== 'scrypt' || salt === undefined || key === undefined) return false
  const expected = Buffer.from(key, 'base64url')
  const actual = await scrypt(password, Buffer.from(salt, 'base64url'), expected.length, { N: Number(n), r: Number(r), p: Number(p) })
  return timingSafeEqual(actual, expected)
}

// Compared against when the email is unknown, so both failures take the same time (at the cost
// new passwords are hashed with).
const dummyHashes = new Map<number, Promise<string>>()
function dummyHash (cost: number): Promise<string> {
  let hash = dummyHashes.get(cost)
  if (hash === undefined) dummyHashes.set(cost, hash = hashPassword(randomBytes(16).toString('hex'), cost))
  return hash
}

// --- accounts and tokens ---

export type SignAccess = (claims: AccessClaims) => string

/** Emails are compared as written, but without surrounding space and case-insensitively. */
export const normaliseEmail = (email: string): string => email.trim().toLowerCase()
const tokenHash = (token: string): string => createHash('sha256').update(token).digest('hex')

/** What starting a session needs: the database, our token signer, and who owns which session. */
export interface AuthDeps {
  db: Db
  sign: SignAccess
  sessions: Pick<SessionRegistry, 'open'>
  /** scrypt's cost for new passwords, log2 N (PASSWORD_HASH_COST) */
  passwordCost: number
}

export async function register ({ db, sign, sessions, passwordCost }: AuthDeps, email: string, password: string): Promise<AuthResult> {
  const id = randomUUID()
  const passwordHash = await hashPassword(password, passwordCost)
  const inserted = await db.insertInto('users')
    .values({ id, email: normaliseEmail(email), password_hash: passwordHash, permissions: DEFAULT_PERMISSIONS })
    .onConflict(oc => oc.column('email').doNothing())
    .returning(['id', 'email', 'permissions'])
    .executeTakeFirst()
  if (inserted === undefined) throw errors.emailTaken()
  return await issueTokens(db, sign, inserted, randomUUID(), await sessions.open(inserted.id))
}

export async function login ({ db, sign, sessions, passwordCost }: AuthDeps, email: string, password: string): Promise<AuthResult> {
  const user = await db.selectFrom('users').select(['id', 'email', 'permissions', 'password_hash'])
    .where('email', '=', normaliseEmail(email)).executeTakeFirst()
  const ok = await verifyPassword(password, user?.password_hash ?? await dummyHash(passwordCost))
  if (user === undefined || user.password_hash === null || !ok) throw errors.invalidCredentials()
  // A login starts a session like any other: past MAX_NEW_SESSIONS_PER_WINDOW it is 429.
  return await issueTokens(db, sign, user, randomUUID(), await sessions.open(user.id))
}

/** What a refresh needs: the database, our signer, and how long a used token may come back. */
export interface RefreshDeps {
  db: Db
  sign: SignAccess
  /** REFRESH_REUSE_WINDOW_MS: a used token presented again within it gets the same new pair */
  reuseWindowMs: number
}

/**
 * Rotates a refresh token. Presenting a used token again revokes its whole family (theft) —
 * unless it comes back within `reuseWindowMs` of its use and the pair it was exchanged for has not
 * been used either: then it is two tabs refreshing at once, and the second gets the same pair as
 * the first (as identity providers' reuse intervals do). The pair is kept encrypted under a key
 * derived from the used token, which only its holder has.
 */
export async function refresh ({ db, sign, reuseWindowMs }: RefreshDeps, refreshToken: string): Promise<AuthResult> {
  const hash = tokenHash(refreshToken)
  // In one transaction with the new pair's row and the kept pair: a concurrent refresh of the
  // same token waits on the row, then finds it used, with the pair to give back already there.
  const outcome = await db.transaction().execute(async (trx): Promise<AuthResult | 'reused' | 'invalid'> => {
    // The database's clock, as the reuse window below is measured on it.
    const used = await trx.updateTable('refresh_tokens').set({ used_at: sql<Date>`clock_timestamp()` })
      .where('token_hash', '=', hash).where('used_at', 'is', null).where('revoked_at', 'is', null)
      .where('expires_at', '>', new Date())
      .returning(['user_id', 'family_id', 'session_id'])
      .executeTakeFirst()
    if (used !== undefined) {
      const user = await trx.selectFrom('users').select(['id', 'email', 'permissions']).where('id', '=', used.user_id).executeTakeFirst()
      if (user === undefined) return 'invalid'
      const result = await issueTokens(trx, sign, user, used.family_id, used.session_id)
      await trx.updateTable('refresh_tokens').set({ successor: sealSuccessor(refreshToken, result) }).where('token_hash', '=', hash).execute()
      return result
    }
    const known = await trx.selectFrom('refresh_tokens')
      .select(['user_id', 'successor', 'revoked_at', sql<boolean>`used_at > clock_timestamp() - make_interval(secs => ${reuseWindowMs / 1000})`.as('recent')])
      .where('token_hash', '=', hash).where('used_at', 'is not', null).executeTakeFirst()
    if (known === undefined) return 'invalid'
    if (known.revoked_at !== null) return 'reused'
    const again = known.recent && known.successor !== null ? openSuccessor(refreshToken, known.successor) : undefined
    if (again !== undefined) {
      const next = await trx.selectFrom('refresh_tokens').select('id').where('token_hash', '=', tokenHash(again.refreshToken))
        .where('used_at', 'is', null).where('revoked_at', 'is', null).executeTakeFirst()
      const user = await trx.selectFrom('users').select(['id', 'email', 'permissions']).where('id', '=', known.user_id).executeTakeFirst()
      if (next !== undefined && user !== undefined) {
        return { ...again, user: { id: user.id, email: user.email, permissions: user.permissions }, expiresIn: Math.max(0, Math.round((again.expiresAt - Date.now()) / 1000)) }
      }
    }
    return 'reused'
  })
  if (outcome === 'invalid') throw errors.unauthenticated('refresh token is invalid, expired or revoked')
  if (outcome === 'reused') {
    // Outside the transaction above, so that the revocation stands although the request fails.
    const family = db.selectFrom('refresh_tokens').select('family_id').where('token_hash', '=', hash)
    await db.updateTable('refresh_tokens').set({ revoked_at: new Date() })
      .where('family_id', '=', family).where('revoked_at', 'is', null).execute()
    throw errors.unauthenticated('refresh token already used; its session has been revoked')
  }
  return outcome
}

/** What a refresh gave out, kept for a second presentation of the same token. */
interface Successor { accessToken: string, refreshToken: string, sessionId: string, expiresAt: number }

// AES-256-GCM under a key derived from the used refresh token (not from its stored hash).
const successorKey = (token: string): Buffer => createHash('sha256').update('workbench refresh successor\0').update(token).digest()

function sealSuccessor (token: string, result: AuthResult): Buffer {
  const successor: Successor = { accessToken: result.accessToken, refreshToken: result.refreshToken, sessionId: result.sessionId, expiresAt: Date.now() + result.expiresIn * 1000 }
  const iv = randomBytes(12)
  const cipher = createCipheriv('aes-256-gcm', successorKey(token), iv)
  const sealed = Buffer.concat([cipher.update(JSON.stringify(successor)), cipher.final()])
  return Buffer.concat([iv, cipher.getAuthTag(), sealed])
}

function openSuccessor (token: string, box: Buffer): Successor | undefined {
  try {
    const decipher = createDecipheriv('aes-256-gcm', successorKey(token), box.subarray(0, 12))
    decipher.setAuthTag(box.subarray(12, 28))
    return JSON.parse(Buffer.concat([decipher.update(box.subarray(28)), decipher.final()]).toString('utf8')) as Successor
  } catch {
    return undefined
  }
}

/** Revokes the token's family; returns whose session it was (undefined for an unknown token). */
export async function logout (db: Db, refreshToken: string): Promise<{ userId: string, sessionId: string } | undefined> {
  const known = await db.selectFrom('refresh_tokens').select(['family_id', 'user_id', 'session_id']).where('token_hash', '=', tokenHash(refreshToken)).executeTakeFirst()
  if (known === undefined) return undefined
  await db.updateTable('refresh_tokens').set({ revoked_at: new Date() })
    .where('family_id', '=', known.family_id).where('revoked_at', 'is', null).execute()
  return { userId: known.user_id, sessionId: known.session_id }
}

async function issueTokens (db: Executor, sign: SignAccess, user: User, familyId: string, sessionId: string): Promise<AuthResult> {
  const refreshToken = randomBytes(32).toString('base64url')
  await db.insertInto('refresh_tokens').values({
    id: randomUUID(),
    user_id: user.id,
    family_id: familyId,
    session_id: sessionId,
    token_hash: tokenHash(refreshToken),
    used_at: null,
    revoked_at: null,
    expires_at: new Date(Date.now() + REFRESH_TOKEN_MS)
  }).execute()
  const accessToken = sign({ sub: user.id, sid: sessionId, permissions: user.permissions })
  return {
    user: { id: user.id, email: user.email, permissions: user.permissions },
    accessToken,
    refreshToken,
    expiresIn: ACCESS_TOKEN_SECONDS,
    sessionId
  }
}

/** Tokens from an outside identity provider name users we may not know yet: add them on first sight. */
export async function ensureUser (db: Db, id: string, email: string | undefined, permissions: string[]): Promise<void> {
  const placeholder = `${id}@external.invalid`
  // The provider's `admin` stays in its tokens, where it can take it back; stored, it would
  // outlive that (the stored admin is only ever granted with `npm run admin`).
  const stored = permissions.filter(p => p !== ADMIN_PERMISSION)
  const insert = async (address: string): Promise<boolean> => undefined !== await db.insertInto('users')
    .values({ id, email: normaliseEmail(address), password_hash: null, permissions: stored })
    .onConflict(oc => oc.doNothing())
    .returning('id')
    .executeTakeFirst()
  // Nothing inserted: the user exists, or another user already has this email. In the second
  // case the user still gets an account, under the placeholder address (unique per id).
  if (!await insert(email ?? placeholder) && email !== undefined) await insert(placeholder)
}
