import { createServer, connect as tcpConnect, type AddressInfo, type Socket } from 'node:net'
import type { Teardown } from './app.js'

/**
 * A TCP proxy in front of a server, so that a client keeps one address while the test restarts
 * the server behind it, moves it to another instance, cuts every connection, or freezes them (a
 * dead peer: nothing is closed, nothing gets through, as when a laptop sleeps or a NAT forgets).
 */
export interface Proxy {
  /** `http://127.0.0.1:<port>` of the proxy */
  base: string
  /** new connections go to this port (existing ones stay where they are) */
  setTarget: (port: number) => void
  /** destroys every open connection (both sides see a reset) */
  dropAll: () => void
  /**
   * true: open connections stop forwarding anything, without closing, and new ones are refused;
   * 'down': only what the server sends is dropped (requests still reach it, answers are lost)
   */
  freeze: (frozen: boolean | 'down') => void
  /** connections accepted so far */
  accepted: () => number
}

export async function startProxy (t: Teardown, targetPort: number): Promise<Proxy> {
  let target = targetPort
  let frozen = false
  let frozenDown = false
  let accepted = 0
  const pairs = new Set<[Socket, Socket]>()
  const server = createServer(client => {
    accepted++
    if (frozen) {
      client.destroy()
      return
    }
    const upstream = tcpConnect(target, '127.0.0.1')
    const pair: [Socket, Socket] = [client, upstream]
    pairs.add(pair)
    client.on('data', (chunk: Buffer) => { if (!frozen && !upstream.destroyed) upstream.write(chunk) })
    upstream.on('data', (chunk: Buffer) => { if (!frozenDown && !client.destroyed) client.write(chunk) })
    const end = (): void => {
      pairs.delete(pair)
      client.destroy()
      upstream.destroy()
    }
    client.on('close', end).on('error', end)
    // While frozen, the server giving up on its side is not passed on: the client must find out itself.
    upstream.on('close', () => { if (frozenDown) upstream.destroy(); else end() }).on('error', () => { if (!frozenDown) end() })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  const dropAll = (): void => {
    for (const [a, b] of [...pairs]) {
      a.destroy()
      b.destroy()
    }
    pairs.clear()
  }
  t.teardown(async () => {
    dropAll()
    await new Promise<void>(resolve => server.close(() => { resolve() }))
  })
  return {
    base: `http://127.0.0.1:${port}`,
    setTarget: p => { target = p },
    dropAll,
    freeze: f => {
      frozen = f === true
      frozenDown = f !== false
    },
    accepted: () => accepted
  }
}
