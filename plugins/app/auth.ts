import { createHash, createPublicKey } from 'node:crypto'
import fp from 'fastify-plugin'
import fastifyJwt from '@fastify/jwt'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { LRUCache } from 'lru-cache'
import { ensureUser, DEFAULT_PERMISSIONS, ACCESS_TOKEN_SECONDS, type AccessClaims, type Actor, type SignAccess, type Verified } from '../../src/accounts/auth.js'
import { errors } from '../../src/core/errors.js'
import { isUuid } from '../../src/core/validation.js'
import { EndedSessions, SessionRegistry } from '../../src/accounts/sessions.js'
import { bearerToken } from '../../src/core/http.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** onRequest hook for every /v1 route but /v1/auth/*: sets `request.actor` or answers 401. */
    authenticate: (request: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) => void
    /** Verifies an access token (HTTP header or WebSocket `auth` message) and returns its actor. */
    verifyAccessToken: (token: string, sessionId?: string) => Promise<Verified>
    /** Signs our own access tokens; undefined when tokens come from an outside provider. */
    signAccessToken: SignAccess | undefined
    /** Who owns each session id, and the bound on new ones (src/accounts/sessions.ts). */
    sessions: SessionRegistry
    /** Sessions ended by logout, on every instance within a second (src/accounts/sessions.ts). */
    endedSessions: EndedSessions
  }
  interface FastifyRequest {
    actor: Actor
  }
}

type Claims = Omit<Verified, 'tokenSessionId'>

/**
 * JWT access tokens: HS256 with JWT_SECRET (we sign and verify), or RS256/ES256 verified with
 * JWT_PUBLIC_KEY (an outside identity provider signs). Only that one algorithm is accepted.
 * @see https://github.com/fastify/fastify-jwt
 */
export default fp(async function auth (fastify) {
  const { config } = fastify
  const publicKey = config.JWT_PUBLIC_KEY?.replace(/\\n/g, '\n')
  const algorithm = publicKey === undefined ? 'HS256' : publicKeyAlgorithm(publicKey)
  await fastify.register(fastifyJwt, {
    secret: publicKey === undefined ? (config.JWT_SECRET ?? '') : { public: publicKey },
    sign: { algorithm, expiresIn: ACCESS_TOKEN_SECONDS },
    verify: { algorithms: [algorithm] }
  })

  const known = new LRUCache<string, true>({ max: 10_000 })
  // Verified tokens by the token itself (bounded; an entry is used only until the token's exp):
  // a tab sends the same token with every request, and verifying it each time is measurable.
  const verified = new LRUCache<string, Claims>({ max: 10_000 })

  const sessions = new SessionRegistry(fastify.db, { max: config.MAX_NEW_SESSIONS_PER_WINDOW, windowMs: config.RATE_LIMIT_WINDOW_MS })

  // Every instance reads the sessions ended by logout every SESSION_END_POLL_MS (twice a second);
  // a restarted one looks back as far as an access token lives.
  const endedSessions = new EndedSessions(fastify.db, (ACCESS_TOKEN_SECONDS + 60) * 1000)
  await endedSessions.poll()
  const endedPoll = setInterval(function readEndedSessions () {
    endedSessions.poll().catch((err: unknown) => { fastify.log.warn({ err }, 'reading ended sessions failed; retrying') })
  }, config.SESSION_END_POLL_MS)
  endedPoll.unref()
  fastify.addHook('onClose', async function stopEndedSessions () { clearInterval(endedPoll) })

  async function verifyAccessToken (token: string, sessionHeader?: string): Promise<Verified> {
    // Here, not only in `authenticate`: a WebSocket upgrade's X-Session-Id comes this way too.
    if (sessionHeader !== undefined && !isUuid(sessionHeader)) throw errors.invalidSessionHeader()
    const known = knownAccess(token, sessionHeader)
    if (known !== undefined) return known
    let claims = unexpired(token)
    if (claims === undefined) {
      claims = await verify(token)
      verified.set(token, claims)
    }
    const access = signedIn(claims, sessionHeader)
    // The session the call is recorded under must be the caller's (its first use claims it):
    // the token's own `sid` too, since an outside provider's tokens name any id they like. A UUID
    // either way: the header was checked above, the token's `sid` by `verify`.
    await sessions.claim(access.userId, access.sessionId)
    return access
  }

  /**
   * verifyAccessToken from memory alone, at once: the token verified before and the session
   * claimed before. Undefined when it needs more; throws what verifyAccessToken would.
   */
  function knownAccess (token: string, sessionHeader: string | undefined): Verified | undefined {
    const claims = unexpired(token)
    if (claims === undefined) return undefined
    const access = signedIn(claims, sessionHeader)
    return sessions.claimed(access.userId, access.sessionId) ? access : undefined
  }

  function unexpired (token: string): Claims | undefined {
    const claims = verified.get(token)
    return claims !== undefined && claims.expiresAt > Date.now() ? claims : undefined
  }

  /** A verified token's caller, recorded under the session the header names, else the token's own. */
  function signedIn (claims: Claims, sessionHeader: string | undefined): Verified {
    if (endedSessions.has(claims.sessionId)) throw errors.unauthenticated('the session has ended (logged out)')
    const { userId, permissions, expiresAt } = claims
    return { userId, permissions, expiresAt, sessionId: sessionHeader ?? claims.sessionId, tokenSessionId: claims.sessionId }
  }

  async function verify (token: string): Promise<Claims> {
    let claims: Partial<AccessClaims> & { exp?: number, email?: string, iat?: number }
    try {
      claims = fastify.jwt.verify(token)
    } catch (err) {
      const code = (err as { code?: string }).code
      if (code === 'FAST_JWT_EXPIRED') throw errors.tokenExpired()
      throw errors.unauthenticated('invalid access token')
    }
    // An outside provider may spell its UUIDs in upper case; ids have one spelling here (they are
    // cache and revocation keys), and a signed claim is canonicalised rather than refused.
    const sub = typeof claims.sub === 'string' ? claims.sub.toLowerCase() : claims.sub
    const sid = typeof claims.sid === 'string' ? claims.sid.toLowerCase() : claims.sid
    if (!isUuid(sub)) throw errors.unauthenticated('the token has no valid sub claim')
    const permissions = Array.isArray(claims.permissions) && claims.permissions.every(p => typeof p === 'string')
      ? claims.permissions
      : publicKey === undefined ? [] : DEFAULT_PERMISSIONS
    if (publicKey !== undefined && !known.has(sub)) {
      await ensureUser(fastify.db, sub, claims.email, permissions)
      known.set(sub, true)
    }
    const sessionId = isUuid(sid) ? sid : derivedSessionId(sub, claims.iat)
    return { userId: sub, sessionId, permissions, expiresAt: claims.exp === undefined ? Infinity : claims.exp * 1000 }
  }

  fastify.decorate('sessions', sessions)
  fastify.decorate('endedSessions', endedSessions)
  fastify.decorate('verifyAccessToken', verifyAccessToken)
  fastify.decorate('signAccessToken', publicKey === undefined ? (claims: AccessClaims) => fastify.jwt.sign(claims) : undefined)
  fastify.decorateRequest('actor', null as unknown as Actor)
  // A callback hook: a caller known from memory (the usual case, see knownAccess) goes on at once,
  // with no promise; the others are verified asynchronously.
  fastify.decorate('authenticate', function authenticate (request: FastifyRequest, _reply: FastifyReply, done: (err?: Error) => void) {
    const token = bearerToken(request.headers.authorization)
    if (token === undefined) throw errors.unauthenticated('missing Authorization: Bearer <token>')
    const session = request.headers['x-session-id']
    // Checked before the token, so a malformed header is 400 whatever the token.
    if (session !== undefined && !isUuid(session)) throw errors.invalidSessionHeader()
    const known = knownAccess(token, session)
    if (known !== undefined) {
      request.actor = actorOf(known)
      done()
      return
    }
    verifyAccessToken(token, session).then(access => {
      request.actor = actorOf(access)
      done()
    }, done)
  })
}, { name: 'auth', dependencies: ['config', 'database'] })

function actorOf ({ userId, sessionId, permissions }: Verified): Actor {
  return { userId, sessionId, permissions }
}

function publicKeyAlgorithm (pem: string): 'RS256' | 'ES256' {
  const type = createPublicKey(pem).asymmetricKeyType
  if (type === 'rsa') return 'RS256'
  if (type === 'ec') return 'ES256'
  throw new Error(`JWT_PUBLIC_KEY must be an RSA or EC public key (got ${String(type)})`)
}

/** A stable session id for outside tokens that carry no `sid`: one per token issue. */
function derivedSessionId (sub: string, iat: number | undefined): string {
  const h = createHash('sha256').update(`${sub}:${iat ?? 0}`).digest('hex')
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`
}
