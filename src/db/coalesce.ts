/**
 * Concurrent loads of one key share one query, as a group commit shares one transaction: while
 * a load of a key runs, every caller that asks for the same key waits for it to end and then
 * shares the next load, started after all of them asked. So no caller gets an answer read
 * before it asked (a membership removed just before a request still refuses it), and under load
 * a hot key costs one query per round trip instead of one per request (issue 11: twenty writers
 * of one workspace each checked their role with a query of their own, and waited on the pool).
 */
export class Coalesced<V> {
  readonly #running = new Map<string, Promise<V>>()
  readonly #next = new Map<string, Promise<V>>()

  async get (key: string, load: () => Promise<V>): Promise<V> {
    const next = this.#next.get(key)
    if (next !== undefined) return await next
    const running = this.#running.get(key)
    if (running === undefined) return await this.#start(key, load)
    const start = async (): Promise<V> => {
      this.#next.delete(key)
      return await this.#start(key, load)
    }
    const queued = running.then(start, start)
    this.#next.set(key, queued)
    return await queued
  }

  #start (key: string, load: () => Promise<V>): Promise<V> {
    const loading = load()
    this.#running.set(key, loading)
    const done = (): void => { if (this.#running.get(key) === loading) this.#running.delete(key) }
    loading.then(done, done)
    return loading
  }
}
