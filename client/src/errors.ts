/** Every failure the SDK reports: an HTTP error answer, a WebSocket/RPC error, or no answer at all. */
export class ApiError extends Error {
  override readonly name = 'ApiError'
  /** the HTTP status; 0 when no answer came (network down, timeout, socket closed) */
  readonly status: number
  /** the contract's stable code (`FILE_NOT_FOUND`, `TOKEN_EXPIRED`, …); `NETWORK_ERROR` when no answer came */
  readonly code: string
  /** the error's `details`, when it has any (e.g. `{ current }` of a 412) */
  readonly details: Record<string, unknown> | undefined
  /** `Retry-After` in seconds, when the answer had one (429, 503) */
  readonly retryAfter: number | undefined

  constructor (status: number, code: string, message: string, details?: Record<string, unknown>, retryAfter?: number, options?: { cause?: unknown }) {
    super(message, options)
    this.status = status
    this.code = code
    this.details = details
    this.retryAfter = retryAfter
  }

  /** No answer came: the request may or may not have been applied (retry it with its idempotency key). */
  get isNetworkError (): boolean { return this.status === 0 }
}

export const NETWORK_ERROR = 'NETWORK_ERROR'

/** An error answer's body as an ApiError (a body that is not the contract's shape still gives one). */
export function apiErrorFrom (status: number, body: unknown, retryAfter?: number): ApiError {
  const b = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>
  const code = typeof b.code === 'string' ? b.code : `HTTP_${status}`
  const message = typeof b.message === 'string' ? b.message : `HTTP ${status}`
  const details = typeof b.details === 'object' && b.details !== null ? b.details as Record<string, unknown> : undefined
  return new ApiError(status, code, message, details, retryAfter)
}
