import t from 'tap'
import { batchError, errors } from '../../src/core/errors.js'
import type { FileService, Rejected } from '../../src/files/service.js'
import { channelName, parseChannel, parseClientMessage } from '../../src/live/protocol.js'
import { callRpc } from '../../src/live/rpc.js'

/** The WebSocket wire format and the RPC table, without sockets or a database. */

const actor = { userId: 'u1', sessionId: 's1', permissions: ['file.read', 'file.write'] }
const workspaceId = '0b6e3f5c-8f0e-4c35-9d3c-3f0a4d2b1e7a'
const log = { error: () => {} }

t.test('channels: one workspace is one channel, and its id has one spelling', async t => {
  t.equal(parseChannel(`workspace:${workspaceId}`), workspaceId)
  const upper = parseClientMessage(JSON.stringify({ type: 'subscribe', channel: `workspace:${workspaceId.toUpperCase()}` }))
  t.match(upper, { error: { code: 'VALIDATION_FAILED', details: { errors: [{ path: '/channel' }] } } }, 'an upper-case id is refused')
  t.equal(channelName(parseChannel(`workspace:${workspaceId}`)), `workspace:${workspaceId}`)
})

t.test('client messages: bad JSON, an unknown type and bad fields are VALIDATION_FAILED', async t => {
  const error = (raw: string): unknown => {
    const parsed = parseClientMessage(raw)
    return 'error' in parsed ? { code: parsed.error.code, message: parsed.error.message, details: parsed.error.details } : parsed
  }
  t.same(error('{'), { code: 'VALIDATION_FAILED', message: 'message is not valid JSON', details: undefined })
  t.same(error('{"type":"nope"}'), { code: 'VALIDATION_FAILED', message: 'unknown message type "nope"', details: undefined })
  t.same(error('[1]'), { code: 'VALIDATION_FAILED', message: 'unknown message type null', details: undefined })
  t.match(error('{"type":"subscribe","channel":"workspace:x"}'), { code: 'VALIDATION_FAILED', message: /^\/channel must match pattern/, details: { errors: [{ path: '/channel' }] } })
  t.same(parseClientMessage('{"type":"ping"}'), { message: { type: 'ping' } })
})

/** A file service that records refusals and answers each call with `answer`. */
function fakeFiles (answer: () => Promise<unknown>): { files: FileService, rejected: Rejected[] } {
  const rejected: Rejected[] = []
  const files = {
    read: async () => ({ entry: await answer() }),
    write: async () => ({ statusCode: 201, body: await answer() }),
    rejected: (_actor: unknown, mutation: Rejected) => { rejected.push(mutation) }
  }
  return { files: files as unknown as FileService, rejected }
}

t.test('rpc: unknown methods, prototype names included, are METHOD_NOT_FOUND and not logged as mutations', async t => {
  const { files, rejected } = fakeFiles(async () => ({}))
  for (const method of ['nope', 'toString', 'constructor', '__proto__']) {
    t.same(await callRpc({ files, actor, log, exposeInternal: false }, 1, method, {}),
      { type: 'rpc.error', id: 1, error: { code: 'METHOD_NOT_FOUND', message: `unknown rpc method "${method}"` } }, method)
  }
  t.same(rejected, [])
})

t.test('rpc: a refused mutation is logged with its activity type; a read is not', async t => {
  const { files, rejected } = fakeFiles(async () => ({}))
  const write = await callRpc({ files, actor, log, exposeInternal: false }, 'w', 'files.write', { workspaceId, path: 7 })
  t.match(write, { type: 'rpc.error', id: 'w', error: { code: 'VALIDATION_FAILED', details: { errors: Array } } })
  t.same(rejected, [{ type: 'file.write', workspaceId, op: null, path: null, context: 'RPC files.write' }])
  await callRpc({ files, actor, log, exposeInternal: false }, 'r', 'files.read', { workspaceId })
  t.equal(rejected.length, 1, 'reads are not mutations')
  t.same(await callRpc({ files, actor, log, exposeInternal: false }, 2, 'files.read', { workspaceId, path: '/a', format: 'raw' }),
    { type: 'rpc.result', id: 2, result: {} }, 'format is accepted and not passed on')
})

t.test('rpc: a 500 is masked outside development, its details kept', async t => {
  const boom = new Error('secret')
  const { files } = fakeFiles(async () => { throw boom })
  t.same(await callRpc({ files, actor, log, exposeInternal: false }, 3, 'files.read', { workspaceId, path: '/a' }),
    { type: 'rpc.error', id: 3, error: { code: 'INTERNAL', message: 'internal server error' } })
  t.same(await callRpc({ files, actor, log, exposeInternal: true }, 4, 'files.read', { workspaceId, path: '/a' }),
    { type: 'rpc.error', id: 4, error: { code: 'INTERNAL', message: 'secret' } })
  const { files: inBatch } = fakeFiles(async () => { throw batchError(1, errors.internal()) })
  t.same(await callRpc({ files: inBatch, actor, log, exposeInternal: false }, 6, 'files.read', { workspaceId, path: '/a' }),
    { type: 'rpc.error', id: 6, error: { code: 'INTERNAL', message: 'internal server error', details: { index: 1, code: 'INTERNAL' } } })
  const { files: failing } = fakeFiles(async () => { throw errors.fileNotFound('/a') })
  t.same(await callRpc({ files: failing, actor, log, exposeInternal: false }, 5, 'files.read', { workspaceId, path: '/a' }),
    { type: 'rpc.error', id: 5, error: { code: 'FILE_NOT_FOUND', message: 'no such file or directory: /a' } }, 'other errors as they are')
})
