import fp from 'fastify-plugin'
import underPressure from '@fastify/under-pressure'
import { errors } from '../../src/core/errors.js'

/** Routes answered even under pressure: liveness, and the metrics that show the pressure. */
const EXEMPT = new Set(['/health', '/metrics'])

/**
 * Load shedding with @fastify/under-pressure: while the event loop delay or utilisation, the heap
 * or the RSS is past its configured bound (OVERLOAD_*; 0 turns a check off), requests are answered
 * at once with 503 UNAVAILABLE and Retry-After instead of queueing until everything times out.
 * The figures are sampled every OVERLOAD_SAMPLE_INTERVAL_MS. /health and /metrics always answer;
 * /ready does not, so a load balancer stops sending traffic to an overloaded instance.
 * @see https://github.com/fastify/under-pressure
 */
export default fp(async function overload (fastify) {
  const { config } = fastify
  const retryAfter = config.OVERLOAD_RETRY_AFTER_S
  await fastify.register(underPressure, {
    maxEventLoopDelay: config.OVERLOAD_MAX_EVENT_LOOP_DELAY_MS,
    maxEventLoopUtilization: config.OVERLOAD_MAX_EVENT_LOOP_UTILIZATION,
    maxHeapUsedBytes: config.OVERLOAD_MAX_HEAP_USED_BYTES,
    maxRssBytes: config.OVERLOAD_MAX_RSS_BYTES,
    sampleInterval: config.OVERLOAD_SAMPLE_INTERVAL_MS,
    retryAfter,
    pressureHandler: async function shed (request, _reply, type, value) {
      if (EXEMPT.has(request.routeOptions.url ?? '')) return
      request.log.warn({ type, value }, 'overloaded: request shed')
      throw errors.unavailable(`the server is overloaded (${type}); retry later`, retryAfter)
    }
  })
}, { name: 'overload', dependencies: ['config', 'error-handler'] })
