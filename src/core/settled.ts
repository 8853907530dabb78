/**
 * Waits until `running` is empty (including what starts meanwhile), at most `waitMs`: on
 * shutdown, for work the HTTP server no longer waits for (a request whose client has gone, a
 * publish after a commit) before what it needs (the database, Redis) is closed.
 */
export async function settled (running: ReadonlySet<Promise<unknown>>, waitMs: number): Promise<void> {
  const deadline = performance.now() + waitMs
  while (running.size > 0 && performance.now() < deadline) {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<void>(resolve => { timer = setTimeout(resolve, deadline - performance.now()) })
    await Promise.race([Promise.allSettled(running), timeout])
    clearTimeout(timer)
  }
}

/** The longest a shutdown waits for each kind of such work (within its 10 s grace period). */
export const SETTLE_MS = 5_000
