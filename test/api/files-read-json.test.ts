import t from 'tap'
import Fastify from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Entry } from '../../schemas/files.js'
import { setup } from '../helpers/files.js'
import { registerUser } from '../helpers/app.js'
import type { Res } from '../helpers/http.js'

/**
 * A plain read (no ?format=raw, ?lines=, ?revision=) is sent from bytes the read cache keeps
 * (src/files/cache.ts `answer`): they must be what returning the entry gave, byte for byte.
 */

/** What Fastify's own serializer makes of `entry` under the read route's 200 schema: the bytes a returned entry gets. */
async function serializedAsBefore (entry: unknown): Promise<{ body: Buffer, type: unknown, length: unknown }> {
  const app = Fastify().withTypeProvider<TypeBoxTypeProvider>()
  app.get('/', { schema: { response: { 200: { content: { 'application/json': { schema: Entry } } } } } }, async () => entry as Entry)
  const res = await app.inject({ url: '/' })
  await app.close()
  return { body: res.rawPayload, type: res.headers['content-type'], length: res.headers['content-length'] }
}

const validators = (res: Res): unknown[] => [res.headers.etag, res.headers['x-revision'], res.headers['content-type'], res.headers['content-length']]

t.test('a plain read sends the bytes the route\'s serializer writes, on a miss and on a hit', async t => {
  const c = await setup(t)
  // Escapes, multibyte text, a lone surrogate's escape, control characters: what serializers may disagree on.
  const text = 'const s = "quote\\" back\\\\slash\\ttab" // héllo ✓ 𝄞 \u2028 \u0001\n'.repeat(12)
  await c.write('/src/a.ts', text, { metadata: { note: 'ünïcode "quoted"', n: 1 } })
  await c.write('/bin/b.bin', Buffer.from([0, 255, 1, 2, 3]).toString('base64'), { encoding: 'base64' })
  await c.mkdir('/empty')

  for (const path of ['/src/a.ts', '/bin/b.bin', '/src', '/', '/empty']) {
    const first = await c.get(path)
    const second = await c.get(path)
    t.equal(first.statusCode, 200, `${path}: ${first.body.slice(0, 200)}`)
    t.equal(second.statusCode, 200)
    t.ok(first.rawPayload.equals(second.rawPayload), `${path}: the cached answer is the first one`)
    t.same(validators(second), validators(first), `${path}: the same headers`)
    const before = await serializedAsBefore(first.json())
    t.ok(first.rawPayload.equals(before.body), `${path}: the bytes a returned entry gets`)
    t.equal(first.headers['content-type'], before.type, `${path}: content-type ${String(before.type)}`)
    t.equal(first.headers['content-length'], before.length)
  }
})

t.test('a plain read: 304, HEAD, a new revision, and the cache off', async t => {
  const envs: Array<Record<string, string>> = [{}, { CACHE_MAX_BYTES: '0' }]
  for (const env of envs) {
    const c = await setup(t, env)
    await c.write('/a.txt', 'one\n')
    const read = await c.get('/a.txt')
    const etag = String(read.headers.etag)
    const again = await c.get('/a.txt', '', { 'if-none-match': etag })
    t.equal(again.statusCode, 304, 'If-None-Match: 304')
    t.equal(again.body, '')
    t.same([again.headers.etag, again.headers['x-revision']], [read.headers.etag, read.headers['x-revision']])
    const head = await c.send('GET', `/v1/workspaces/${c.ws}/files/a.txt`)
    t.equal(head.body, read.body)
    const headOnly = await c.app.inject({ method: 'HEAD', url: `/v1/workspaces/${c.ws}/files/a.txt`, headers: c.user.auth })
    t.equal(headOnly.statusCode, 200)
    t.equal(headOnly.headers['content-length'], read.headers['content-length'], 'HEAD: the length of the GET')
    t.equal(headOnly.body, '')
    // Another file's write moves the revision: the answer follows it (x-revision), the etag stays.
    await c.write('/b.txt', 'two\n')
    const later = await c.get('/a.txt')
    t.equal(later.headers.etag, etag)
    t.equal(Number(later.headers['x-revision']), Number(read.headers['x-revision']) + 1)
    t.equal(later.body, read.body)
    await c.write('/a.txt', 'three\n')
    t.equal((await c.read('/a.txt')).content, 'three\n', 'a new write is read at once')
  }
})

t.test('a kept answer is not sent to whom may not read the workspace', async t => {
  const c = await setup(t)
  await c.write('/secret.txt', 'mine\n')
  t.equal((await c.get('/secret.txt')).statusCode, 200)
  const other = await registerUser(c.app)
  const res = await c.app.inject({ url: `/v1/workspaces/${c.ws}/files/secret.txt`, headers: other.auth })
  t.not(res.statusCode, 200, `another user: ${res.statusCode}`)
})
