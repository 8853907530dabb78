/** Cluster-wide /metrics (WORKERS > 1): the primary sums every worker's registry and answers a worker's request over IPC. */
import cluster from 'node:cluster'
import { randomUUID } from 'node:crypto'
import { AggregatorRegistry, type Registry } from 'prom-client'

// Both sides of the exchange live here, so the message shapes cannot drift apart.
const METRICS_REQUEST = 'workbench:metrics-request'
const METRICS_REPLY = 'workbench:metrics-reply'

interface MetricsRequest { type: typeof METRICS_REQUEST, id: string }
interface MetricsReply { type: typeof METRICS_REPLY, id: string, text?: string, error?: string }

function isMessage<T extends { type: string }> (message: unknown, type: T['type']): message is T {
  return typeof message === 'object' && message !== null && (message as { type?: unknown }).type === type
}

/** In the primary: answers each worker's request with the summed metrics of every worker (prom-client's AggregatorRegistry). */
export function serveClusterMetrics (): void {
  const aggregator = new AggregatorRegistry()
  cluster.on('message', (worker, message: unknown) => {
    if (!isMessage<MetricsRequest>(message, METRICS_REQUEST)) return
    aggregator.clusterMetrics().then(
      text => { worker.send({ type: METRICS_REPLY, id: message.id, text } satisfies MetricsReply) },
      (err: Error) => { worker.send({ type: METRICS_REPLY, id: message.id, error: err.message } satisfies MetricsReply) }
    )
  })
}

/**
 * In a worker: makes `registry` the one the primary gathers from this worker, and returns the
 * /metrics text function: every worker's metrics summed, or this worker's alone (after
 * `onFallback`) when the primary does not answer, so a scrape never fails for it.
 */
export function workerMetricsText (registry: Registry, onFallback: (err: unknown) => void): () => Promise<string> {
  AggregatorRegistry.setRegistries([registry])
  // Constructing one installs prom-client's worker-side listener, which answers the primary's gathering.
  new AggregatorRegistry() // eslint-disable-line no-new
  return async function clusterMetricsText () {
    try {
      return await requestClusterMetrics()
    } catch (err) {
      onFallback(err)
      return await registry.metrics()
    }
  }
}

/** In a worker: the summed metrics of every worker, from the primary. */
async function requestClusterMetrics (timeoutMs = 5_000): Promise<string> {
  const send = process.send?.bind(process)
  if (send === undefined) throw new Error('not a cluster worker')
  const id = randomUUID()
  return await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => { done(new Error('the primary did not answer in time')) }, timeoutMs)
    function onMessage (message: unknown): void {
      if (!isMessage<MetricsReply>(message, METRICS_REPLY) || message.id !== id) return
      done(message.error === undefined ? null : new Error(message.error), message.text)
    }
    function done (err: Error | null, text?: string): void {
      clearTimeout(timer)
      process.off('message', onMessage)
      if (err !== null) reject(err)
      else resolve(text ?? '')
    }
    process.on('message', onMessage)
    send({ type: METRICS_REQUEST, id } satisfies MetricsRequest)
  })
}
