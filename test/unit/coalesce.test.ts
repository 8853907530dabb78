import t from 'tap'
import { Coalesced } from '../../src/db/coalesce.js'

/** A load the test finishes by hand, numbered in the order loads started. */
function loads (): { load: () => Promise<number>, started: number, finish: (value?: number) => void, fail: (err: Error) => void } {
  const pending: Array<{ resolve: (v: number) => void, reject: (e: Error) => void, n: number }> = []
  const self = {
    started: 0,
    load: async () => await new Promise<number>((resolve, reject) => { pending.push({ resolve, reject, n: ++self.started }) }),
    finish: (value?: number) => {
      const p = pending.shift()
      if (p === undefined) throw new Error('no load is running')
      p.resolve(value ?? p.n)
    },
    fail: (err: Error) => {
      const p = pending.shift()
      if (p === undefined) throw new Error('no load is running')
      p.reject(err)
    }
  }
  return self
}

const tick = async (): Promise<void> => { await new Promise(resolve => setImmediate(resolve)) }

t.test('callers that ask while a load runs share the next one, started after all of them asked', async t => {
  const c = new Coalesced<number>()
  const l = loads()
  const first = c.get('k', l.load)
  await tick()
  const waiting = [c.get('k', l.load), c.get('k', l.load), c.get('k', l.load)]
  await tick()
  t.equal(l.started, 1, 'one load at a time for a key')
  l.finish()
  t.equal(await first, 1, 'the first caller gets the load it started')
  await tick()
  t.equal(l.started, 2, 'the waiting callers\' load starts once the first ended')
  const late = c.get('k', l.load)
  l.finish()
  t.same(await Promise.all(waiting), [2, 2, 2], 'three callers, one query')
  await tick()
  t.equal(l.started, 3, 'a caller that asked while the second load ran gets a third')
  l.finish()
  t.equal(await late, 3)
})

t.test('keys do not share, and a failed load fails only those that shared it', async t => {
  const c = new Coalesced<number>()
  const l = loads()
  const a = c.get('a', l.load)
  const b = c.get('b', l.load)
  await tick()
  t.equal(l.started, 2, 'two keys, two loads at once')
  l.fail(new Error('down'))
  await t.rejects(a, { message: 'down' })
  l.finish(7)
  t.equal(await b, 7)
  const again = c.get('a', l.load)
  await tick()
  t.equal(l.started, 3, 'a failed load is not kept')
  l.finish(8)
  t.equal(await again, 8)
})

t.test('a caller waiting behind a failed load gets a load of its own', async t => {
  const c = new Coalesced<number>()
  const l = loads()
  const first = c.get('k', l.load)
  await tick()
  const second = c.get('k', l.load)
  l.fail(new Error('down'))
  await t.rejects(first)
  await tick()
  l.finish(5)
  t.equal(await second, 5)
})
