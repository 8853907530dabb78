import { createHash, randomBytes, randomUUID, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto'
import type { Db } from '../db/schema.js'
import { errors } from '../core/errors.js'
import type { AuthResult, User } from '../../schemas/auth.js'
import type { SessionRegistry } from './sessions.js'

/** Who makes a call: the token's user and permissions, and the session the call belongs to. */
export interface Actor {
  userId: string
  sessionId: string
  permissions: string[]
}

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

const SCRYPT = { N: 16384, r: 8, p: 1, keylen: 64 }

function scrypt (password: string, salt: Buffer, keylen: number, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scryptCb(password, salt, keylen, options, (err, key) => { if (err) reject(err); else resolve(key) })
  })
}

export async function hashPassword (password: string): Promise<string> {
  const salt = randomBytes(16)
  const key = await scrypt(password, salt, SCRYPT.keylen, { N: SCRYPT.N, r: SCRYPT.r, p: SCRYPT.p })
  return `scrypt$${SCRYPT.N}$${SCRYPT.r}$${SCRYPT.p}$${salt.toString('base64url')}$${key.toString('base64url')}`
}

export async function verifyPassword (password: string, stored: string): Promise<boolean> {
  const [scheme, n, r, p, salt, key] = stored.split('$')
  if (scheme !== 'scrypt' || salt === undefined || key === undefined) return false
  const expected = Buffer.from(key, 'base64url')
  const actual = await scrypt(password, Buffer.from(salt, 'base64url'), expected.length, { N: Number(n), r: Number(r), p: Number(p) })
  return timingSafeEqual(actual, expected)
}

// Compared against when the email is unknown, so both failures take the same time.
const DUMMY_HASH = hashPassword(randomBytes(16).toString('hex'))

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
}

export async function register ({ db, sign, sessions }: AuthDeps, email: string, password: string): Promise<AuthResult> {
  const id = randomUUID()
  const passwordHash = await hashPassword(password)
  const inserted = await db.insertInto('users')
    .values({ id, email: normaliseEmail(email), password_hash: passwordHash, permissions: DEFAULT_PERMISSIONS })
    .onConflict(oc => oc.column('email').doNothing())
    .returning(['id', 'email', 'permissions'])
    .executeTakeFirst()
  if (inserted === undefined) throw errors.emailTaken()
  return await issueTokens(db, sign, inserted, randomUUID(), await sessions.open(inserted.id))
}

export async function login ({ db, sign, sessions }: AuthDeps, email: string, password: string): Promise<AuthResult> {
  const user = await db.selectFrom('users').select(['id', 'email', 'permissions', 'password_hash'])
    .where('email', '=', normaliseEmail(email)).executeTakeFirst()
  const ok = await verifyPassword(password, user?.password_hash ?? await DUMMY_HASH)
  if (user === undefined || user.password_hash === null || !ok) throw errors.invalidCredentials()
  // A login starts a session like any other: past MAX_NEW_SESSIONS_PER_WINDOW it is 429.
  return await issueTokens(db, sign, user, randomUUID(), await sessions.open(user.id))
}

/** Rotates a refresh token. Presenting a used token again revokes its whole family (theft). */
export async function refresh (db: Db, sign: SignAccess, refreshToken: string): Promise<AuthResult> {
  const hash = tokenHash(refreshToken)
  const used = await db.updateTable('refresh_tokens').set({ used_at: new Date() })
    .where('token_hash', '=', hash).where('used_at', 'is', null).where('revoked_at', 'is', null)
    .where('expires_at', '>', new Date())
    .returning(['user_id', 'family_id', 'session_id'])
    .executeTakeFirst()
  if (used === undefined) {
    const known = await db.selectFrom('refresh_tokens').select(['family_id', 'used_at']).where('token_hash', '=', hash).executeTakeFirst()
    if (known?.used_at != null) {
      await db.updateTable('refresh_tokens').set({ revoked_at: new Date() })
        .where('family_id', '=', known.family_id).where('revoked_at', 'is', null).execute()
      throw errors.unauthenticated('refresh token already used; its session has been revoked')
    }
    throw errors.unauthenticated('refresh token is invalid, expired or revoked')
  }
  const user = await db.selectFrom('users').select(['id', 'email', 'permissions']).where('id', '=', used.user_id).executeTakeFirst()
  if (user === undefined) throw errors.unauthenticated('account no longer exists')
  return await issueTokens(db, sign, user, used.family_id, used.session_id)
}

/** Revokes the token's family; returns whose session it was (undefined for an unknown token). */
export async function logout (db: Db, refreshToken: string): Promise<{ userId: string, sessionId: string } | undefined> {
  const known = await db.selectFrom('refresh_tokens').select(['family_id', 'user_id', 'session_id']).where('token_hash', '=', tokenHash(refreshToken)).executeTakeFirst()
  if (known === undefined) return undefined
  await db.updateTable('refresh_tokens').set({ revoked_at: new Date() })
    .where('family_id', '=', known.family_id).where('revoked_at', 'is', null).execute()
  return { userId: known.user_id, sessionId: known.session_id }
}

async function issueTokens (db: Db, sign: SignAccess, user: User, familyId: string, sessionId: string): Promise<AuthResult> {
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
