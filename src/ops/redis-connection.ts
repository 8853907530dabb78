/** Opening and closing the app's Redis connections: a bounded wait until one is ready, and a close that works while Redis is down. */
import type { Redis } from 'ioredis'

/** Resolves true once `client` is ready, false if it is not within `timeoutMs` (it keeps reconnecting on its own). */
export async function whenReady (client: Redis, timeoutMs: number): Promise<boolean> {
  if (client.status === 'ready') return true
  return await new Promise<boolean>(resolve => {
    const onReady = (): void => { clearTimeout(timer); resolve(true) }
    const timer = setTimeout(() => { client.off('ready', onReady); resolve(false) }, timeoutMs)
    client.once('ready', onReady)
  })
}

/** QUIT, or, when Redis does not answer, drop the connection: closing must not fail during an outage. */
export async function closeConnection (client: Redis): Promise<void> {
  await client.quit().catch(() => { client.disconnect() })
}
