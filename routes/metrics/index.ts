import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { responses } from '../../schemas/common.js'
import { RouteErrors } from '../../schemas/responses.js'

/**
 * GET /metrics: the Prometheus text of plugins/app/metrics.ts (every worker's, summed, with
 * WORKERS > 1). No auth. Outside /v1, so never rate limited (plugins/external/rate-limit.ts),
 * and answered even under pressure (plugins/external/overload.ts): it shows the pressure.
 */
const metricsRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { metrics } = fastify
  fastify.get('/metrics', {
    schema: {
      tags: ['operations'],
      summary: 'Prometheus metrics (text exposition format)',
      security: [],
      response: responses({
        200: { description: 'The metrics', content: { 'text/plain': { schema: Type.String({ description: 'Prometheus text format 0.0.4 (Content-Type: text/plain; version=0.0.4; charset=utf-8)' }) } } }
      }, ...RouteErrors.liveness)
    }
  }, async function prometheus (_request, reply) {
    const text = await metrics.text()
    return await reply.type(metrics.registry.contentType).send(text)
  })
}
export default metricsRoutes
