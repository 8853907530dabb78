import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import * as auth from '../../src/accounts/auth.js'
import { errors } from '../../src/core/errors.js'
import { AuthResult, Credentials, RefreshBody, User } from '../../schemas/auth.js'
import { described, noContent, responses } from '../../schemas/common.js'
import { Examples, RouteErrors } from '../../schemas/responses.js'

/** Accounts and tokens: /v1/auth/* (no token needed) and /v1/me. */
const authRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { db, config } = fastify
  const passwordCost = config.PASSWORD_HASH_COST
  const tags = ['auth']

  /** Logins, refreshes and logouts go into the session's activity log. */
  async function record (type: string, status: number, session: { userId: string, sessionId: string }, started: number): Promise<void> {
    await fastify.activity.record({ ...session, type, status, durationMs: performance.now() - started },
      err => { fastify.log.warn({ err }, 'activity entry failed') })
  }

  function signer (): auth.SignAccess {
    if (fastify.signAccessToken === undefined) throw errors.forbidden('accounts are managed by the identity provider (JWT_PUBLIC_KEY is set)')
    return fastify.signAccessToken
  }

  fastify.post('/auth/register', {
    schema: {
      tags,
      summary: 'Create an account and start a session',
      security: [],
      body: described(Credentials, { example: Examples.credentials }),
      response: responses({ 201: described(AuthResult, { description: 'Registered and logged in', example: Examples.authResult }) }, ...RouteErrors.open, { 403: ['FORBIDDEN'], 409: ['EMAIL_TAKEN'] })
    }
  }, async function register (request, reply) {
    const started = performance.now()
    if (!config.ALLOW_REGISTRATION) throw errors.forbidden('registration is switched off')
    const result = await auth.register({ db, sign: signer(), sessions: fastify.sessions, passwordCost }, request.body.email, request.body.password)
    await record('auth.register', 201, { userId: result.user.id, sessionId: result.sessionId }, started)
    return await reply.code(201).send(result)
  })

  fastify.post('/auth/login', {
    schema: {
      tags,
      summary: 'Log in and start a session',
      security: [],
      body: described(Credentials, { example: Examples.credentials }),
      response: responses({ 200: described(AuthResult, { description: 'Logged in', example: Examples.authResult }) }, ...RouteErrors.open, { 401: ['INVALID_CREDENTIALS'], 403: ['FORBIDDEN'] })
    }
  }, async function login (request) {
    const started = performance.now()
    const result = await auth.login({ db, sign: signer(), sessions: fastify.sessions, passwordCost }, request.body.email, request.body.password)
    await record('auth.login', 200, { userId: result.user.id, sessionId: result.sessionId }, started)
    return result
  })

  fastify.post('/auth/refresh', {
    schema: {
      tags,
      summary: 'Rotate a refresh token for a new token pair',
      security: [],
      body: RefreshBody,
      response: responses({ 200: described(AuthResult, { description: 'A new token pair' }) }, ...RouteErrors.open, { 401: ['UNAUTHENTICATED'], 403: ['FORBIDDEN'] })
    }
  }, async function refresh (request) {
    const started = performance.now()
    const result = await auth.refresh({ db, sign: signer(), reuseWindowMs: config.REFRESH_REUSE_WINDOW_MS }, request.body.refreshToken)
    await record('auth.refresh', 200, { userId: result.user.id, sessionId: result.sessionId }, started)
    return result
  })

  fastify.post('/auth/logout', {
    schema: { tags, summary: 'Revoke a refresh token and its family', security: [], body: RefreshBody, response: responses({ 204: noContent('Logged out (also when the token was unknown)') }, ...RouteErrors.open) }
  }, async function logout (request, reply) {
    const started = performance.now()
    const session = await auth.logout(db, request.body.refreshToken)
    if (session !== undefined) {
      // Its access tokens stop too: here at once, on every instance within a second.
      await fastify.endedSessions.end(session.sessionId)
      await record('auth.logout', 204, session, started)
    }
    return await reply.code(204).send(null)
  })

  fastify.get('/me', {
    onRequest: fastify.authenticate,
    schema: { tags, summary: 'The caller', response: responses({ 200: described(User, { description: 'The caller' }) }, ...RouteErrors.authenticated) }
  }, async function me (request) {
    const user = await db.selectFrom('users').select(['id', 'email', 'permissions']).where('id', '=', request.actor.userId).executeTakeFirst()
    if (user === undefined) throw errors.unauthenticated('account no longer exists')
    return { ...user, permissions: request.actor.permissions }
  })
}
export default authRoutes
