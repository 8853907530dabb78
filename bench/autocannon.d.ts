// The subset of autocannon 9's programmatic API that the benchmarks use (it ships no types).
declare module 'autocannon' {
  import type { EventEmitter } from 'node:events'

  namespace autocannon {
    interface Request {
      method?: string
      path?: string
      headers?: Record<string, string>
      body?: string | Buffer
      /** called before each request of a client; return the request to send */
      setupRequest?: (request: Request, context: Record<string, unknown>) => Request
      onResponse?: (status: number, body: string, context: Record<string, unknown>, headers: Record<string, string>) => void
    }
    interface Client extends EventEmitter {
      setRequests: (requests: Request[]) => void
    }
    interface Options {
      url: string
      connections?: number
      pipelining?: number
      /** seconds */
      duration?: number
      timeout?: number
      method?: string
      headers?: Record<string, string>
      body?: string
      requests?: Request[]
      setupClient?: (client: Client) => void
    }
    interface Result {
      requests: { average: number, total: number }
      errors: number
      timeouts: number
      non2xx: number
      duration: number
    }
    interface Instance extends EventEmitter, PromiseLike<Result> {
      stop: () => void
    }
  }
  function autocannon (options: autocannon.Options): autocannon.Instance
  export default autocannon
}
