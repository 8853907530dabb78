import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { pingDatabase } from '../../src/ops/readiness.js'
import { errors } from '../../src/core/errors.js'
import { described, responses } from '../../schemas/common.js'
import { RouteErrors } from '../../schemas/responses.js'

const Status = Type.Object({ status: Type.String() })

/** Liveness and readiness, for load balancers and orchestrators. No auth. */
const health: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get('/health', {
    schema: { tags: ['operations'], summary: 'Liveness: 200 while the process serves', security: [], response: responses({ 200: described(Status, { description: 'Alive' }) }, ...RouteErrors.liveness) }
  }, async function liveness () {
    return { status: 'ok' }
  })

  fastify.get('/ready', {
    schema: { tags: ['operations'], summary: 'Readiness: 200 when the database (and Redis, when configured) answer', security: [], response: responses({ 200: described(Status, { description: 'Ready' }) }, ...RouteErrors.readiness) }
  }, async function readiness () {
    try {
      await pingDatabase(fastify.db)
    } catch {
      throw errors.unavailable('the database does not answer')
    }
    const redis = fastify.redis?.cmd
    if (redis !== undefined) {
      try {
        await redis.ping()
      } catch {
        throw errors.unavailable('redis does not answer')
      }
    }
    return { status: 'ready' }
  })
}
export default health
