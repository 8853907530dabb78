import t from 'tap'
import type { BusMessage } from '../../src/live/bus.js'
import type { PresenceListener, Subscriber } from '../../src/live/hub.js'
import { memoryPresenceStore, Presence, type Member } from '../../src/live/presence.js'
import type { Frame } from '../../src/live/protocol.js'

/**
 * Presence's ordering of a session's entries, in one process: the in-memory store and an
 * in-process bus (what two instances share through Redis is tested in test/live/presence.test.ts).
 */

type PresenceMessage = Extract<BusMessage, { t: 'presence' }>

/** The bus between the Presence instances of one test: every message reaches every listener. */
function bus (): { publishPresence: (workspaceId: string, message: PresenceMessage) => Promise<void>, onPresence: (listener: PresenceListener) => () => void } {
  const listeners = new Set<PresenceListener>()
  return {
    publishPresence: async (workspaceId, message) => { for (const listener of listeners) listener(workspaceId, message) },
    onPresence: listener => {
      listeners.add(listener)
      return () => { listeners.delete(listener) }
    }
  }
}

class Watcher implements Subscriber {
  readonly clientId = 'watcher'
  readonly seen: Array<{ kind: string, state: unknown }> = []
  deliver (frames: readonly Frame[]): void {
    for (const frame of frames) {
      const message = JSON.parse(frame.toString()) as { kind: string, state: unknown }
      this.seen.push({ kind: message.kind, state: message.state })
    }
  }
}

const log = { warn: () => {} }
const member = (state: Record<string, unknown>): Member => ({ sessionId: 's1', userId: 'u1', state })

t.test('two sockets of one session set within one millisecond: the later set is the member\'s state', async t => {
  const presence = new Presence({ store: memoryPresenceStore(), fanout: bus(), log, heartbeatMs: 60_000 })
  t.teardown(() => { presence.close() })
  const watcher = new Watcher()
  await presence.watch('w', watcher, () => true)
  // one after the other in the same turn, so that Date.now() is (mostly) the same for both; ten sessions
  for (let i = 0; i < 10; i++) {
    const sessionId = `s${i}`
    const from = watcher.seen.length
    await Promise.all([
      presence.set('w', `a${i}`, { ...member({ tab: 1 }), sessionId }),
      presence.set('w', `b${i}`, { ...member({ tab: 2 }), sessionId })
    ])
    t.same(watcher.seen.slice(from), [{ kind: 'join', state: { tab: 1 } }, { kind: 'update', state: { tab: 2 } }], `session ${i}`)
    await presence.remove('w', `b${i}`)
    t.same(watcher.seen.at(-1), { kind: 'update', state: { tab: 1 } }, 'back to the remaining socket')
  }
})

t.test('entries of one session with the same time, learnt in opposite orders: every instance picks the same one', async t => {
  const buses = [bus(), bus()]
  const instances = buses.map(fanout => new Presence({ store: memoryPresenceStore(), fanout, log, heartbeatMs: 60_000 }))
  t.teardown(() => { for (const p of instances) p.close() })
  const watchers = [new Watcher(), new Watcher()]
  for (const [i, p] of instances.entries()) await p.watch('w', watchers[i] as Watcher, () => true)
  const at = Date.now()
  const message = (field: string): PresenceMessage => ({ t: 'presence', from: 'elsewhere', field, sessionId: 's1', entry: { ...member({ from: field }), at, exp: at + 60_000 } })
  await buses[0]?.publishPresence('w', message('a'))
  await buses[0]?.publishPresence('w', message('b'))
  await buses[1]?.publishPresence('w', message('b'))
  await buses[1]?.publishPresence('w', message('a'))
  t.same(watchers.map(w => w.seen.at(-1)?.state), [{ from: 'b' }, { from: 'b' }], 'the greater field wins the tie on both')
})
