import t from 'tap'
import { ReadCache, type CacheLayer, type HeadSource } from '../../src/files/cache.js'
import type { WorkspaceHead } from '../../src/accounts/workspaces.js'

/**
 * The read cache on its own (no Redis): what it keeps, when it asks again, and its bound. Its
 * loaders are the callbacks it is given; `heads` is its constructor dependency for the current
 * revision (the fan-out in the app), here a table the test moves by hand.
 */

const WS = '11111111-1111-4111-8111-111111111111'
const OTHER_WS = '22222222-2222-4222-8222-222222222222'
const ALICE = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa'
const BOB = 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb'
const CREATED = new Date('2026-01-01T00:00:00.000Z')

/** Heads the test sets; remembers which workspaces the cache asked to follow. */
class FakeHeads implements HeadSource {
  readonly revisions = new Map<string, number>()
  readonly watched: string[] = []
  head (workspaceId: string): number | undefined { return this.revisions.get(workspaceId) }
  watch (workspaceId: string): void { this.watched.push(workspaceId) }
}

function makeCache (options: { maxBytes?: number, heads?: HeadSource } = {}) {
  const counted: Array<{ kind: 'hit' | 'miss', layer: CacheLayer }> = []
  const cache = new ReadCache({
    maxBytes: options.maxBytes ?? 1024 * 1024,
    heads: options.heads,
    counters: {
      hit: layer => { counted.push({ kind: 'hit', layer }) },
      miss: layer => { counted.push({ kind: 'miss', layer }) }
    }
  })
  return { cache, counted }
}

/** A loader that counts its calls and answers `value`. */
function loader<T> (value: T): { load: () => Promise<T>, calls: () => number } {
  let calls = 0
  return { load: async () => { calls++; return value }, calls: () => calls }
}

const head = (revision: number): WorkspaceHead => ({ revision, ownerId: ALICE, createdAt: CREATED })

t.test('an entry read once is answered from memory at the same revision', async t => {
  const { cache, counted } = makeCache()
  const value = { path: '/a.txt', etag: '3' }
  const l = loader(value)
  t.equal(await cache.entry(WS, 3, '/a.txt', l.load), value, 'first read: the loaded value')
  t.equal(await cache.entry(WS, 3, '/a.txt', l.load), value, 'second read: the very same object')
  t.equal(l.calls(), 1, 'loaded once')
  t.same(counted, [{ kind: 'miss', layer: 'memory' }, { kind: 'hit', layer: 'memory' }], 'one miss, then one hit')
  t.same(cache.stats, { entries: 1, bytes: JSON.stringify(value).length * 2 }, 'one entry, sized by its JSON')
})

t.test('an entry at another revision, path or workspace is another key', async t => {
  const { cache } = makeCache()
  const l = loader({ path: '/a.txt' })
  await cache.entry(WS, 3, '/a.txt', l.load)
  await cache.entry(WS, 4, '/a.txt', l.load)
  await cache.entry(WS, 3, '/b.txt', l.load)
  await cache.entry(OTHER_WS, 3, '/a.txt', l.load)
  t.equal(l.calls(), 4, 'each loaded')
  t.equal(cache.stats.entries, 4)
})

t.test('a missing entry (undefined) is not kept', async t => {
  const { cache } = makeCache()
  const l = loader<undefined>(undefined)
  t.equal(await cache.entry(WS, 1, '/nope', l.load), undefined)
  t.equal(await cache.entry(WS, 1, '/nope', l.load), undefined)
  t.equal(l.calls(), 2, 'asked again each time')
  t.same(cache.stats, { entries: 0, bytes: 0 })
})

t.test('access: answered from memory once the workspace is followed, with the head the fan-out knows', async t => {
  const heads = new FakeHeads()
  const { cache } = makeCache({ heads })
  const l = loader(head(3))
  t.same(await cache.access(WS, ALICE, l.load), head(3), 'first access: loaded')
  t.same(heads.watched, [WS], 'the workspace is followed from then on')
  // Not known to the fan-out yet: the database is asked again.
  t.same(await cache.access(WS, ALICE, l.load), head(3))
  t.equal(l.calls(), 2, 'no head known: loaded again')
  heads.revisions.set(WS, 3)
  t.same(await cache.access(WS, ALICE, l.load), head(3), 'head known: from memory')
  t.equal(l.calls(), 2, 'no load')
  heads.revisions.set(WS, 5)
  t.same(await cache.access(WS, ALICE, l.load), head(5), 'a newer head is seen at once')
  t.equal(l.calls(), 2, 'still no load')
  t.same(await cache.access(WS, BOB, loader(head(5)).load), head(5), 'another user is loaded on their own')
})

t.test('a newer revision known through heads makes reads miss the older entry', async t => {
  const heads = new FakeHeads()
  const { cache, counted } = makeCache({ heads })
  const access = loader(head(1))
  const v1 = loader({ path: '/a.txt', etag: '1' })
  const v2 = loader({ path: '/a.txt', etag: '2' })
  const read = async (content: { load: () => Promise<{ path: string, etag: string }> }) => {
    const ws = await cache.access(WS, ALICE, access.load)
    return await cache.entry(WS, ws.revision, '/a.txt', content.load)
  }
  heads.revisions.set(WS, 1)
  t.same(await read(v1), { path: '/a.txt', etag: '1' }, 'read at revision 1')
  t.same(await read(v1), { path: '/a.txt', etag: '1' }, 'again: cached')
  heads.revisions.set(WS, 2)
  t.same(await read(v2), { path: '/a.txt', etag: '2' }, 'revision 2 is known: the new entry')
  t.equal(v1.calls(), 1)
  t.equal(v2.calls(), 1)
  t.equal(access.calls(), 1, 'access loaded once')
  t.same(counted.map(c => c.kind), ['miss', 'hit', 'miss'])
})

t.test('forget: the next access asks the database again, for those users only', async t => {
  const heads = new FakeHeads()
  heads.revisions.set(WS, 7)
  const { cache } = makeCache({ heads })
  const alice = loader(head(7))
  const bob = loader(head(7))
  await cache.access(WS, ALICE, alice.load)
  await cache.access(WS, BOB, bob.load)
  await cache.access(WS, ALICE, alice.load)
  await cache.access(WS, BOB, bob.load)
  t.equal(alice.calls(), 1)
  t.equal(bob.calls(), 1)
  cache.forget(WS, [ALICE])
  await cache.access(WS, ALICE, alice.load)
  await cache.access(WS, BOB, bob.load)
  t.equal(alice.calls(), 2, 'alice is asked again')
  t.equal(bob.calls(), 1, 'bob still from memory')
  cache.forget(OTHER_WS, [BOB])
  await cache.access(WS, BOB, bob.load)
  t.equal(bob.calls(), 1, 'forgetting another workspace changes nothing here')
})

t.test('a failed access load is not remembered', async t => {
  const heads = new FakeHeads()
  heads.revisions.set(WS, 1)
  const { cache } = makeCache({ heads })
  await t.rejects(cache.access(WS, ALICE, async () => { throw new Error('not a member') }), { message: 'not a member' })
  const l = loader(head(1))
  await cache.access(WS, ALICE, l.load)
  t.equal(l.calls(), 1, 'asked the database')
  t.same(heads.watched, [WS], 'followed only after a successful load')
})

t.test('the in-process layer is bounded by bytes, least recently used out first', async t => {
  const { cache } = makeCache({ maxBytes: 100 })
  const a = loader(Buffer.alloc(40, 'a'))
  const b = loader(Buffer.alloc(40, 'b'))
  const c = loader(Buffer.alloc(40, 'c'))
  await cache.blob('a', a.load)
  await cache.blob('b', b.load)
  t.same(cache.stats, { entries: 2, bytes: 80 })
  await cache.blob('a', a.load) // a is now the most recently used
  await cache.blob('c', c.load) // over 100 bytes: b goes
  t.same(cache.stats, { entries: 2, bytes: 80 })
  await cache.blob('a', a.load)
  await cache.blob('c', c.load)
  t.equal(a.calls(), 1, 'a stayed')
  t.equal(c.calls(), 1, 'c stayed')
  t.equal(b.calls(), 1, 'b not asked again yet')
  t.same(await cache.blob('b', b.load), Buffer.alloc(40, 'b'), 'b is loaded again')
  t.equal(b.calls(), 2, 'b had been evicted')
})

t.test('a blob larger than the whole bound is answered but not kept', async t => {
  const { cache } = makeCache({ maxBytes: 100 })
  const big = loader(Buffer.alloc(101, 'x'))
  t.equal((await cache.blob('big', big.load))?.length, 101)
  await cache.blob('big', big.load)
  t.equal(big.calls(), 2)
  t.same(cache.stats, { entries: 0, bytes: 0 })
})

t.test('maxBytes 0: nothing is kept and nothing followed', async t => {
  const heads = new FakeHeads()
  heads.revisions.set(WS, 2)
  const { cache, counted } = makeCache({ maxBytes: 0, heads })
  const access = loader(head(2))
  const entry = loader({ path: '/a.txt' })
  const blob = loader(Buffer.from('x'))
  for (let i = 0; i < 2; i++) {
    await cache.access(WS, ALICE, access.load)
    await cache.entry(WS, 2, '/a.txt', entry.load)
    await cache.blob('x', blob.load)
  }
  t.same([access.calls(), entry.calls(), blob.calls()], [2, 2, 2], 'every read loads')
  t.same(heads.watched, [], 'no workspace followed')
  t.same(cache.stats, { entries: 0, bytes: 0 })
  t.equal(counted.filter(c => c.kind === 'hit').length, 0, 'no hits')
})
