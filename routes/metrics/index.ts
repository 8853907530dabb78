import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'

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
      produces: ['text/plain'],
      response: { 200: Type.String({ description: 'Prometheus text format 0.0.4' }) }
    }
  }, async function prometheus (_request, reply) {
    const text = await metrics.text()
    return await reply.type(metrics.registry.contentType).send(text)
  })
}
export default metricsRoutes
