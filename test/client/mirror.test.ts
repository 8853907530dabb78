import t from 'tap'
import fc from 'fast-check'
import WebSocket from 'ws'
import { ApiError, WorkbenchClient, WorkspaceMirror, type Operation } from '../../client/src/index.js'
import { build, listen, PASSWORD } from '../helpers/app.js'
import { startProxy } from '../helpers/proxy.js'

/**
 * WorkspaceMirror against the real server: after 1,000 random operations (files, directories,
 * moves and copies of subtrees, overwrites, edits, metadata and mimeType changes, batches,
 * reverts) from two writers, with the mirror's socket cut now and then, the mirror equals
 * `GET /tree` at the same revision, at every pause and at the end.
 */

const SEED = 1414
const DIRS = ['', '/a', '/b', '/a/c']
const NAMES = ['x.ts', 'y.md', 'z', 'c']
const pathArb = fc.tuple(fc.constantFrom(...DIRS), fc.constantFrom(...NAMES)).map(([d, n]) => `${d}/${n}`)
const anyPath = fc.oneof(pathArb, fc.constantFrom(...DIRS.filter(d => d !== '')))
const content = fc.constantFrom('a', 'ab\nba\n', 'aaa', '', 'b\r\nab\r\n', 'é')
const metadata = fc.option(fc.record({ k: fc.integer({ min: 0, max: 3 }) }), { nil: undefined })
const mimeType = fc.option(fc.constantFrom('text/plain', 'text/x-c;charset=utf-8'), { nil: undefined })

const opArb: fc.Arbitrary<Operation> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ type: fc.constant('create' as const), path: pathArb, content, metadata, mimeType }) },
  { weight: 3, arbitrary: fc.record({ type: fc.constant('update' as const), path: pathArb, content: fc.option(content, { nil: undefined }), metadata, mimeType }) },
  { weight: 2, arbitrary: fc.record({ type: fc.constant('delete' as const), path: anyPath }) },
  { weight: 2, arbitrary: fc.record({ type: fc.constant('move' as const), path: anyPath, newPath: anyPath, overwrite: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ type: fc.constant('copy' as const), path: anyPath, newPath: anyPath, overwrite: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('mkdir' as const), path: anyPath }) },
  { weight: 2, arbitrary: fc.record({ type: fc.constant('edit' as const), path: pathArb, edits: fc.constant([{ oldText: 'a', newText: 'A', replaceAll: true }]) }) }
).map(op => Object.fromEntries(Object.entries(op).filter(([, v]) => v !== undefined)) as Operation)

type Step =
  | { kind: 'op', op: Operation }
  | { kind: 'write', path: string, content: string }
  | { kind: 'batch', ops: Operation[] }
  | { kind: 'revert', back: number }

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 16, arbitrary: opArb.map(op => ({ kind: 'op' as const, op })) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('write' as const), path: pathArb, content }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('batch' as const), ops: fc.array(opArb, { minLength: 2, maxLength: 4 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('revert' as const), back: fc.integer({ min: 1, max: 3 }) }) }
)

t.test('the mirror equals /tree after 1,000 random operations, reconnects included', async t => {
  const app = await build(t, { WS_MESSAGES_PER_SECOND: '10000' })
  const base = await listen(app)
  const proxy = await startProxy(t, Number(new URL(base).port))
  const email = `sdk-mirror-${Math.random().toString(36).slice(2)}@example.com`
  const direct = new WorkbenchClient({ baseUrl: base })
  await direct.auth.register({ email, password: PASSWORD })
  const ws = await direct.workspaces.create('mirror')
  // The mirror's client goes through the proxy, which the test cuts now and then.
  const client = new WorkbenchClient({ baseUrl: proxy.base, WebSocket, retryDelayMs: 20, live: { reconnectDelayMs: 20, maxReconnectDelayMs: 200 } })
  await client.auth.login({ email, password: PASSWORD })
  t.teardown(() => { client.live.close() })
  await direct.operations.batch(ws.id, [{ type: 'create', path: '/a/x.ts', content: 'a' }, { type: 'mkdir', path: '/b' }])
  const mirror = await WorkspaceMirror.open(client, ws.id)
  t.equal(mirror.revision, 2, 'opened at the snapshot\'s revision')
  let ownEchoes = 0
  mirror.onChange(u => { if (u.own === true) ownEchoes++ })

  const steps = fc.sample(stepArb, { seed: SEED, numRuns: 1000 })
  const failures = new Map<string, number>()
  let applied = 0
  const run = async (writer: WorkbenchClient, step: Step): Promise<void> => {
    try {
      switch (step.kind) {
        case 'op': await writer.operations.apply(ws.id, step.op); break
        case 'write': await writer.files.write(ws.id, step.path, { content: step.content }); break
        case 'batch': await writer.operations.batch(ws.id, step.ops); break
        case 'revert': {
          const head = (await writer.workspaces.get(ws.id)).revision
          await writer.revert(ws.id, { toRevision: Math.max(0, head - step.back), force: true })
        }
      }
      applied++
    } catch (err) {
      if (!(err instanceof ApiError) || err.status >= 500 || err.status === 0) throw err
      failures.set(err.code, (failures.get(err.code) ?? 0) + 1)
    }
  }

  const check = async (label: string): Promise<void> => {
    const tree = await direct.files.treeAll(ws.id)
    await mirror.reached(tree.revision)
    t.equal(mirror.revision, tree.revision, `${label}: at the tree's revision`)
    t.same(mirror.list(), tree.entries, `${label}: the mirror equals /tree at revision ${tree.revision} (${tree.entries.length} entries)`)
  }

  for (let round = 0; round < 4; round++) {
    const chunk = steps.slice(round * 250, (round + 1) * 250)
    // Two writers at once: the direct one and the mirror's own client (whose writes are its echoes).
    await Promise.all([0, 1].map(async w => {
      for (let i = w; i < chunk.length; i += 2) {
        const step = chunk[i]
        if (step !== undefined) await run(w === 0 ? direct : client, step)
        if (w === 0 && i % 60 === 0) {
          // Cut the mirror's connections (socket and HTTP alike); it reconnects and resumes.
          if (i % 120 === 0) proxy.dropAll()
          else client.live.reconnectNow()
        }
      }
    }))
    await check(`after ${(round + 1) * 250} operations`)
  }
  t.ok(applied >= 250, `${applied} of 1,000 applied; refused: ${JSON.stringify(Object.fromEntries(failures))}`)
  t.ok(ownEchoes > 0, `the mirror's client recognised ${ownEchoes} of its own writes`)
  t.ok(client.live.connections > 5, `${client.live.connections} sockets`)
  mirror.close()
})

t.test('an entry whose meta cannot be read makes the mirror read the tree again', async t => {
  const app = await build(t)
  const base = await listen(app)
  const email = `sdk-mirror-${Math.random().toString(36).slice(2)}@example.com`
  const direct = new WorkbenchClient({ baseUrl: base })
  await direct.auth.register({ email, password: PASSWORD })
  const ws = await direct.workspaces.create('resync')
  let refuse = 1
  const client = new WorkbenchClient({
    baseUrl: base,
    WebSocket,
    // The first read of an entry at a revision is answered 404, as when its history was pruned.
    fetch: async (input, init) => {
      if (refuse > 0 && String(input).includes('revision=')) {
        refuse--
        return new Response(JSON.stringify({ statusCode: 404, code: 'FILE_NOT_FOUND', error: 'Not Found', message: 'pruned' }), { status: 404, headers: { 'content-type': 'application/json' } })
      }
      return await fetch(input, init)
    }
  })
  await client.auth.login({ email, password: PASSWORD })
  t.teardown(() => { client.live.close() })
  const errors: unknown[] = []
  const mirror = await WorkspaceMirror.open(client, ws.id, { onError: e => { errors.push(e) } })
  const updates: string[] = []
  mirror.onChange(u => { updates.push(`${u.type}@${u.revision}`) })
  await direct.files.write(ws.id, '/a.md', { content: 'a' })
  await direct.operations.apply(ws.id, { type: 'update', path: '/a.md', metadata: { x: 1 } })
  await direct.files.write(ws.id, '/b.md', { content: 'b' })
  await mirror.reached(3)
  t.same(mirror.list(), (await direct.files.treeAll(ws.id)).entries, 'equal to /tree')
  t.match(errors, [{ code: 'FILE_NOT_FOUND' }], 'the failure was reported')
  t.ok(updates.some(u => u.startsWith('snapshot@')), `it read the tree again (${updates.join(' ')})`)
  mirror.close()
})

t.test('a revert that moves entries back (each with a new version) is followed exactly', async t => {
  const app = await build(t)
  const base = await listen(app)
  const client = new WorkbenchClient({ baseUrl: base, WebSocket })
  await client.auth.register({ email: `sdk-mirror-${Math.random().toString(36).slice(2)}@example.com`, password: PASSWORD })
  t.teardown(() => { client.live.close() })
  const ws = await client.workspaces.create('revert')
  await client.operations.batch(ws.id, [{ type: 'create', path: '/d/f.md', content: 'a', metadata: { n: 1 } }, { type: 'create', path: '/d/g.md', content: 'b' }])
  const mirror = await WorkspaceMirror.open(client, ws.id)
  await client.operations.apply(ws.id, { type: 'move', path: '/d', newPath: '/e' })
  await client.operations.apply(ws.id, { type: 'update', path: '/e/f.md', content: 'changed', metadata: { n: 2 } })
  const reverted = await client.revert(ws.id, { toRevision: 2 })
  t.match(reverted.changes.map(c => [c.op, c.version]), [['update', Number], ['move', null]], 'undone as an update and a move back')
  await mirror.reached(reverted.revision)
  const tree = await client.files.treeAll(ws.id)
  t.same(mirror.list(), tree.entries, 'the mirror equals /tree')
  t.same(tree.entries.map(e => e.path), ['/d', '/d/f.md', '/d/g.md'])
  t.equal(tree.entries.find(e => e.path === '/d/g.md')?.version, 2, 'moved back with a new version, which the move change did not say')
  mirror.close()
})
