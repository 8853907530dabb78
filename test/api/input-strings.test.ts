import t, { type Test } from 'tap'
import { isError, request, type Res, type Workspace } from '../helpers/http.js'
import { setup, type Ctx } from '../helpers/files.js'
import { listen } from '../helpers/app.js'
import { connect } from '../helpers/ws.js'

/**
 * Strings that would reach PostgreSQL as text or jsonb and fail there (NUL, a lone surrogate),
 * metadata too deep to serialise, and tree cursors that decode to such values: each is 400
 * VALIDATION_FAILED in the contract's error shape, not 500, and changes nothing (the "Hardening"
 * issue, finding 12).
 */

/** Sends a request that must be refused with 400 VALIDATION_FAILED, and checks the revision did not move. */
async function refused (t: Test, c: Ctx, label: string, send: () => Promise<Res>): Promise<void> {
  const before = await c.revision()
  isError(t, await send(), 400, 'VALIDATION_FAILED', label)
  await c.unchanged(t, before, label)
}

/** `{"a":{"a":…1…}}` (or `[[…1…]]`) nested `depth` deep, as JSON text: JSON.parse takes it, JSON.stringify of the result overflows the stack. */
function nested (depth: number, kind: 'object' | 'array'): string {
  return kind === 'object' ? '{"a":'.repeat(depth) + '1' + '}'.repeat(depth) : '['.repeat(depth) + '1' + ']'.repeat(depth)
}

const BAD_METADATA: Array<[string, string]> = [
  ['NUL in a metadata value', JSON.stringify({ k: 'a\u0000b' })],
  ['NUL in a metadata key', JSON.stringify({ 'a\u0000b': 1 })],
  ['NUL in a nested metadata value', JSON.stringify({ k: [{ x: ['\u0000'] }] })],
  ['a lone surrogate in a metadata value', '{"k":"\\ud800"}'],
  ['a lone surrogate in a metadata key', '{"\\udc00x":1}'],
  ['metadata 200k objects deep', nested(200_000, 'object')],
  ['metadata 200k arrays deep', `{"a":${nested(200_000, 'array')}}`],
  ['metadata 65 levels deep', nested(65, 'object')]
]

t.test('metadata: NUL, lone surrogates and deep nesting are 400 on every route that takes it', async t => {
  const c = await setup(t)
  await c.write('/a.txt', 'a')
  const ops = `/v1/workspaces/${c.ws}/operations`
  for (const [label, metadata] of BAD_METADATA) {
    await refused(t, c, `PUT: ${label}`, async () => await c.put('/b.txt', `{"content":"x","metadata":${metadata}}`))
    await refused(t, c, `create: ${label}`, async () => await c.send('POST', ops, `{"type":"create","path":"/b.txt","metadata":${metadata}}`))
    await refused(t, c, `update: ${label}`, async () => await c.send('POST', ops, `{"type":"update","path":"/a.txt","metadata":${metadata}}`))
    await refused(t, c, `batch: ${label}`, async () =>
      await c.send('POST', `${ops}/batch`, `{"operations":[{"type":"mkdir","path":"/d"},{"type":"update","path":"/a.txt","metadata":${metadata}}]}`))
  }
  t.strictSame((await c.read('/a.txt')).metadata, {}, 'the file\'s metadata is as it was')
  t.strictSame(await c.allPaths(), ['/a.txt'], 'nothing was created')
})

t.test('metadata that is fine still is: astral characters, 64 levels, the 16 KiB bound', async t => {
  const c = await setup(t)
  const metadata = { emoji: '😀 \u00e9', deep: JSON.parse(nested(63, 'object')) as unknown, list: [1, 'two', null, true] }
  const res = await c.put('/ok.txt', { content: 'x', metadata })
  t.equal(res.statusCode, 201, res.body)
  t.strictSame((await c.read('/ok.txt')).metadata, metadata)
  isError(t, await c.put('/big.txt', { content: 'x', metadata: { k: 'x'.repeat(17 * 1024) } }), 400, 'VALIDATION_FAILED', 'over 16 KiB')
})

t.test('NUL in mimeType or in a workspace name is 400', async t => {
  const c = await setup(t)
  await c.write('/a.txt', 'a')
  await refused(t, c, 'PUT mimeType', async () => await c.put('/b.txt', { content: 'x', mimeType: 'text/plain\u0000' }))
  await refused(t, c, 'update mimeType', async () => await c.op({ type: 'update', path: '/a.txt', mimeType: 'text/\u0000plain' }))
  const list = async (): Promise<Workspace[]> => (await c.getUrl('/v1/workspaces')).json<{ items: Workspace[] }>().items
  const before = await list()
  for (const name of ['a\u0000b', '\u0000', 'x\ud800']) {
    isError(t, await request(c.app, 'POST', '/v1/workspaces', { token: c.user.token, payload: { name } }), 400, 'VALIDATION_FAILED', `name ${JSON.stringify(name)}`)
  }
  t.strictSame(await list(), before, 'no workspace was created')
  const ok = await request(c.app, 'POST', '/v1/workspaces', { token: c.user.token, payload: { name: 'projet café 😀' } })
  t.equal(ok.statusCode, 201, ok.body)
})

t.test('a tree cursor that decodes to a NUL path or a non-integer revision is 400', async t => {
  const c = await setup(t)
  await c.write('/a.txt', 'a')
  await c.write('/b.txt', 'b')
  const cursor = (text: string): string => Buffer.from(text).toString('base64url')
  const cursors: Array<[string, string]> = [
    ['p: "\\u0000"', '{"p":"\\u0000","r":1}'],
    ['p: a lone surrogate', '{"p":"/\\ud800","r":1}'],
    ['p: not a path', '{"p":"a","r":1}'],
    ['r: 1e400', '{"p":"/a.txt","r":1e400}'],
    ['r: 1.5', '{"p":"/a.txt","r":1.5}'],
    ['r: -1', '{"p":"/a.txt","r":-1}'],
    ['r: 2^53', '{"p":"/a.txt","r":9007199254740992}'],
    ['not JSON', 'x'],
    ['an array', '["/a.txt",1]']
  ]
  for (const [label, text] of cursors) {
    isError(t, await c.treeRes({ path: '/', depth: 0, limit: 1, cursor: cursor(text) }), 400, 'VALIDATION_FAILED', label)
  }
  // The server's own cursors still page.
  const first = await c.treeRes({ path: '/', depth: 0, limit: 1 })
  const next = first.json<{ nextCursor: string }>().nextCursor
  const second = await c.treeRes({ path: '/', depth: 0, limit: 1, cursor: next })
  t.equal(second.statusCode, 200, second.body)
  t.strictSame(second.json<{ entries: Array<{ path: string }> }>().entries.map(e => e.path), ['/b.txt'])
})

t.test('WebSocket RPC takes the same schemas: the same refusals, nothing written', async t => {
  const c = await setup(t)
  await c.write('/a.txt', 'a')
  const before = await c.revision()
  const ws = await connect(t, await listen(c.app), { token: c.user.token })
  const workspaceId = c.ws
  const calls: Array<[string, string, Record<string, unknown>]> = [
    ['files.write metadata NUL', 'files.write', { workspaceId, path: '/b.txt', content: 'x', metadata: { k: 'a\u0000' } }],
    ['files.write metadata 65 deep', 'files.write', { workspaceId, path: '/b.txt', content: 'x', metadata: JSON.parse(nested(65, 'object')) as unknown }],
    ['files.write mimeType', 'files.write', { workspaceId, path: '/b.txt', content: 'x', mimeType: 'text/plain; x=\u2603' }],
    ['files.write idempotencyKey NUL', 'files.write', { workspaceId, path: '/b.txt', content: 'x', idempotencyKey: 'k\u0000' }],
    ['operations.apply metadata lone surrogate', 'operations.apply', { workspaceId, type: 'update', path: '/a.txt', metadata: { k: '\ud800' } }],
    ['operations.apply upper-case workspaceId', 'operations.apply', { workspaceId: workspaceId.toUpperCase(), type: 'delete', path: '/a.txt' }],
    ['files.delete urn workspaceId', 'files.delete', { workspaceId: `urn:uuid:${workspaceId}`, path: '/a.txt' }]
  ]
  for (const [label, method, params] of calls) {
    t.match(await ws.rpc(method, params), { type: 'rpc.error', error: { code: 'VALIDATION_FAILED' } }, label)
  }
  await c.unchanged(t, before)
})
