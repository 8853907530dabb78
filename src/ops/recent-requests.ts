/** The last minute of requests on this instance, summarised for /v1/stats (rate, latency percentiles, error rates). */

/**
 * The last minute of requests (time, duration, status) in a fixed ring, for the /v1/stats
 * summary. Percentiles are exact over what the ring holds; past `capacity` requests a minute the
 * summary covers the most recent `capacity` requests and says how many seconds that is.
 */
export class RecentRequests {
  readonly #at: Float64Array
  readonly #ms: Float64Array
  readonly #status: Uint16Array
  readonly #windowMs: number
  readonly #startedAt = Date.now()
  #next = 0
  #size = 0

  constructor (capacity = 65_536, windowMs = 60_000) {
    this.#at = new Float64Array(capacity)
    this.#ms = new Float64Array(capacity)
    this.#status = new Uint16Array(capacity)
    this.#windowMs = windowMs
  }

  record (status: number, ms: number, now = Date.now()): void {
    this.#at[this.#next] = now
    this.#ms[this.#next] = ms
    this.#status[this.#next] = status
    this.#next = (this.#next + 1) % this.#at.length
    this.#size = Math.min(this.#size + 1, this.#at.length)
  }

  summary (now = Date.now()): RequestSummary {
    const since = now - this.#windowMs
    const durations: number[] = []
    let serverErrors = 0
    let clientErrors = 0
    let oldest = now
    for (let i = 0; i < this.#size; i++) {
      const at = this.#at[i] ?? 0
      if (at < since) continue
      oldest = Math.min(oldest, at)
      durations.push(this.#ms[i] ?? 0)
      const status = this.#status[i] ?? 0
      if (status >= 500) serverErrors++
      else if (status >= 400) clientErrors++
    }
    const n = durations.length
    // The window: a minute, or less when the process is younger or the ring overflowed.
    const full = this.#size === this.#at.length && n === this.#size
    const windowMs = Math.max(1, Math.min(this.#windowMs, now - this.#startedAt, full ? now - oldest : Infinity))
    durations.sort((a, b) => a - b)
    const pct = (p: number): number => round(durations[Math.max(0, Math.ceil(p * n) - 1)] ?? 0)
    return {
      windowSeconds: round(windowMs / 1000),
      requests: n,
      requestsPerSecond: round(n / Math.max(1, windowMs / 1000)),
      latencyMs: n === 0 ? null : { p50: pct(0.5), p95: pct(0.95), p99: pct(0.99), max: round(durations[n - 1] ?? 0) },
      errorRate: n === 0 ? 0 : round(serverErrors / n, 4),
      clientErrorRate: n === 0 ? 0 : round(clientErrors / n, 4)
    }
  }
}

export interface RequestSummary {
  windowSeconds: number
  requests: number
  requestsPerSecond: number
  latencyMs: { p50: number, p95: number, p99: number, max: number } | null
  errorRate: number
  clientErrorRate: number
}

function round (x: number, digits = 3): number {
  const f = 10 ** digits
  return Math.round(x * f) / f
}
