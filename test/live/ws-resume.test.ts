import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { build, buildWith, createWorkspace, listen, REDIS_URL, registerUser, sleep, testConfig, type TestUser } from '../helpers/app.js'
import { expectStatus, type WriteResult } from '../helpers/http.js'
import { connect, isEvent, range, type Client } from '../helpers/ws.js'

/**
 * Resuming after a disconnect: `since` replays exactly what was missed, then live events follow
 * with no gap and no duplicate at the seam, while writes go on. Run on the Redis transport and
 * on the embedded default (PGlite, in-process bus, no REDIS_URL).
 */

interface Setup { app: FastifyInstance, base: string, user: TestUser, workspaceId: string }

async function write (app: FastifyInstance, user: TestUser, workspaceId: string, path: string): Promise<number> {
  const res = await app.inject({ method: 'PUT', url: `/v1/workspaces/${workspaceId}/files${path}`, headers: user.auth, payload: { content: path } })
  return expectStatus<WriteResult>(res, [200, 201], 'write').revision
}

async function writeMany (s: Setup, prefix: string, n: number): Promise<number> {
  let last = 0
  for (let i = 0; i < n; i++) last = await write(s.app, s.user, s.workspaceId, `/${prefix}/f${i}.txt`)
  return last
}

/** Writers that keep writing until stopped; resolves with the last revision written. */
function backgroundWriters (s: Setup, prefix: string, writers: number): { stop: () => Promise<number> } {
  const state = { running: true }
  const done = Promise.all(range(1, writers).map(async w => {
    let last = 0
    for (let i = 0; state.running; i++) last = Math.max(last, await write(s.app, s.user, s.workspaceId, `/${prefix}/w${w}-${i}.txt`))
    return last
  }))
  return {
    stop: async () => {
      state.running = false
      return Math.max(...await done)
    }
  }
}

/** The index of the first `subscribed` message at or after `from`. */
function subscribedAt (c: Client, from: number): number {
  return c.messages.findIndex((m, i) => i >= from && m.type === 'subscribed')
}

/**
 * `seams`: how many times the subscribe seam is crossed under `writers` background writers (the
 * embedded database, one connection in WebAssembly, runs the same checks at a smaller scale).
 */
function resumeSuite (t: Test, setup: () => Promise<Setup>, load = { seams: 30, writers: 6 }): void {
  let s: Setup
  t.before(async () => { s = await setup() })

  t.test('a client that missed 100 changes resumes with since: those 100, then live ones, no gap, no duplicate', async t => {
    // A witness stays subscribed the whole time, so the channel is live on this instance while
    // the client rejoins; the second round runs with the client alone on the channel.
    const witness = await connect(t, s.base, { token: s.user.token })
    const start = await witness.join(s.workspaceId)
    for (const round of ['with a live channel', 'alone on the channel']) {
      const first = await connect(t, s.base, { token: s.user.token })
      const head = await first.join(s.workspaceId)
      const seen = await writeMany(s, `${round}/before`, 10)
      const revs = await first.untilRevision(s.workspaceId, seen)
      t.same(revs, range(head + 1, seen), `${round}: live events before the disconnect`)
      const last = revs.at(-1) ?? 0
      first.close()
      await first.closed
      if (round === 'alone on the channel') {
        witness.close()
        await witness.closed
        // The channel is left asynchronously; give it a moment to unsubscribe from the bus.
        await sleep(100)
      }

      const missedTo = await writeMany(s, `${round}/missed`, 100)
      t.equal(missedTo, last + 100, `${round}: 100 changes while disconnected`)

      // Writes go on while the client reconnects and re-subscribes.
      const writers = backgroundWriters(s, `${round}/during`, 3)
      await sleep(20)
      const again = await connect(t, s.base, { token: s.user.token })
      const from = again.messages.length
      const subscribed = await again.subscribe(s.workspaceId, last)
      t.match(subscribed, { type: 'subscribed', channel: `workspace:${s.workspaceId}`, revision: Number })
      t.notOk('reset' in subscribed, `${round}: no reset`)
      const at = typeof subscribed.revision === 'number' ? subscribed.revision : -1
      t.ok(at >= missedTo, `${round}: subscribed at the head (${at} >= ${missedTo})`)
      await sleep(200)
      const end = await writers.stop()
      t.ok(end > at, `${round}: writes continued after the subscription (${end} > ${at})`)
      const all = await again.untilRevision(s.workspaceId, end)

      const index = subscribedAt(again, from)
      const replayed = again.messages.slice(from, index).filter(isEvent).map(m => m.revision)
      const live = again.messages.slice(index).filter(isEvent).map(m => m.revision)
      t.same(replayed, range(last + 1, at), `${round}: replay before subscribed is exactly ${last + 1}..${at}`)
      t.same(replayed.slice(0, 100), range(last + 1, missedTo), `${round}: the replay starts with exactly the 100 missed`)
      t.same(live, range(at + 1, end), `${round}: then live events ${at + 1}..${end}`)
      t.same(all, range(last + 1, end), `${round}: no gap and no duplicate at the seam`)
      // The replayed events are the changes themselves, as the change feed has them.
      const feed = await s.app.inject({ method: 'GET', url: `/v1/workspaces/${s.workspaceId}/changes?since=${last}&limit=100`, headers: s.user.auth })
      const replayedData = again.messages.slice(from, index).filter(isEvent).slice(0, 100).map(m => m.data)
      t.same(replayedData, feed.json<{ changes: unknown[] }>().changes, `${round}: replayed events carry the feed's changes`)
      again.close()
    }
    t.same(witness.revisions(s.workspaceId).slice(0, 1), [start + 1], 'the witness started after its subscription')
    const witnessRevs = witness.revisions(s.workspaceId)
    t.same(witnessRevs, range(start + 1, witnessRevs.at(-1) ?? 0), 'the witness saw every revision while it was there')
  })

  t.test('subscribing while writes go on, again and again: no event past subscribed.revision comes before it', async t => {
    // The seam under load: live events that reach the socket while its subscribe is still being
    // completed (access read again, the channel's presence read) are held until `subscribed` is sent.
    const writers = backgroundWriters(s, 'seam', load.writers)
    const seams: Array<{ at: number, early: number[], next: number | undefined }> = []
    for (let i = 0; i < load.seams; i++) {
      const c = await connect(t, s.base, { token: s.user.token })
      const head = await s.app.db.selectFrom('workspaces').select('revision').where('id', '=', s.workspaceId).executeTakeFirstOrThrow()
      const from = c.messages.length
      const subscribed = await c.subscribe(s.workspaceId, head.revision)
      const at = typeof subscribed.revision === 'number' ? subscribed.revision : -1
      await c.untilRevision(s.workspaceId, at + 1)
      const index = subscribedAt(c, from)
      seams.push({
        at,
        early: c.messages.slice(from, index).filter(isEvent).map(m => m.revision).filter(r => r > at),
        next: c.messages.slice(index).filter(isEvent).map(m => m.revision)[0]
      })
      c.close()
      await c.closed
    }
    await writers.stop()
    t.same(seams.map(x => x.early), seams.map(() => []), 'nothing past subscribed.revision before subscribed')
    t.same(seams.map(x => x.next), seams.map(x => x.at + 1), 'the first live event follows subscribed.revision')
  })

  t.test('a since older than retention: subscribed with reset: true and no replay', async t => {
    const client = await connect(t, s.base, { token: s.user.token })
    const head = await writeMany(s, 'retention', 5)
    // What pruning leaves behind: changes up to pruned_through are gone from the feed.
    const prunedThrough = head - 3
    await s.app.db.updateTable('workspaces').set({ pruned_through: prunedThrough }).where('id', '=', s.workspaceId).execute()

    const from = client.messages.length
    const reset = await client.subscribe(s.workspaceId, prunedThrough - 1)
    t.same(reset, { type: 'subscribed', channel: `workspace:${s.workspaceId}`, revision: head, reset: true })
    t.same(client.messages.slice(from).filter(isEvent), [], 'nothing replayed on a reset')
    const feed = await s.app.inject({ method: 'GET', url: `/v1/workspaces/${s.workspaceId}/changes?since=${prunedThrough - 1}`, headers: s.user.auth })
    t.match(feed.json(), { head, changes: [], reset: true }, 'the REST feed agrees')

    // Live events still follow a reset.
    const next = await write(s.app, s.user, s.workspaceId, '/retention/after.txt')
    t.same(await client.untilRevision(s.workspaceId, next), [next])

    // At the retention edge: no reset, the retained changes are replayed.
    const edge = await connect(t, s.base, { token: s.user.token })
    const edgeFrom = edge.messages.length
    const ok = await edge.subscribe(s.workspaceId, prunedThrough)
    t.same(ok, { type: 'subscribed', channel: `workspace:${s.workspaceId}`, revision: next })
    t.same(edge.messages.slice(edgeFrom).filter(isEvent).map(m => m.revision), range(prunedThrough + 1, next))
    client.close()
    edge.close()
  })
}

t.test('Redis transport (PostgreSQL)', async t => {
  resumeSuite(t, async () => {
    const app = await build(t, { REDIS_URL, OVERLOAD_MAX_EVENT_LOOP_DELAY_MS: '0' })
    const base = await listen(app)
    const user = await registerUser(app)
    return { app, base, user, workspaceId: await createWorkspace(app, user) }
  })
})

t.test('embedded default: PGlite and the in-process bus, no REDIS_URL', async t => {
  resumeSuite(t, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wb-ws-resume-'))
    t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
    const config = testConfig({ DATA_DIR: dir })
    t.equal(config.DATABASE_URL, undefined)
    t.equal(config.REDIS_URL, undefined)
    const app = await buildWith(t, config)
    t.equal(app.redis, undefined, 'no Redis client in the embedded mode')
    const base = await listen(app)
    const user = await registerUser(app)
    return { app, base, user, workspaceId: await createWorkspace(app, user) }
  }, { seams: 10, writers: 3 })
})
