import t, { type Test } from 'tap'
import { execFile } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import SwaggerParser from '@apidevtools/swagger-parser'
import openapiTS, { astToString } from 'openapi-typescript'
import { build, createWorkspace, listen, PASSWORD, registerUser, ROOT_DIR, TEST_SECRET } from '../helpers/app.js'
import { expectStatus, request, type Method, type Res, type Target, type WriteResult } from '../helpers/http.js'
import { accessClaims, nowSeconds, signJwt } from '../helpers/jwt.js'

/**
 * The OpenAPI document (issue "Contract and observability", item 1): valid OpenAPI 3, every
 * templated path parameter declared and no other, and usable: a client generated from it
 * (openapi-typescript) type-checks against a real call's answer.
 */

interface Media { schema?: { type?: string, properties?: { code?: { enum?: string[] }, statusCode?: { enum?: number[] } } }, example?: unknown }
interface Response { description: string, headers?: Record<string, unknown>, content?: Record<string, Media> }
interface Operation {
  parameters?: Array<{ name: string, in: string, required?: boolean }>
  requestBody?: { content: Record<string, Media> }
  responses: Record<string, Response>
  security?: unknown[]
}
type Doc = { openapi: string, paths: Record<string, Record<string, Operation>>, components: { headers?: Record<string, unknown> } }

/** The codes the document declares for an error status of an operation (undefined: the status is not declared). */
function declaredCodes (operation: Operation | undefined, status: number): string[] | undefined {
  const response = operation?.responses[String(status)]
  if (response === undefined) return undefined
  return response.content?.['application/json']?.schema?.properties?.code?.enum ?? []
}

t.test('/docs/json is valid OpenAPI 3, and its path parameters match its templates', async t => {
  const app = await build(t)
  const doc = (await app.inject({ url: '/docs/json' })).json<Doc>()
  await t.resolves(SwaggerParser.validate(structuredClone(doc) as never), 'swagger-parser validates it')
  for (const [template, operations] of Object.entries(doc.paths)) {
    const inTemplate = [...template.matchAll(/\{([^}]+)\}/g)].map(m => m[1]).sort()
    for (const [method, operation] of Object.entries(operations)) {
      const declared = (operation.parameters ?? []).filter(p => p.in === 'path').map(p => p.name).sort()
      t.same(declared, inTemplate, `${method.toUpperCase()} ${template}: path parameters`)
      t.ok((operation.parameters ?? []).filter(p => p.in === 'path').every(p => p.required === true), `${method.toUpperCase()} ${template}: path parameters required`)
    }
  }
  t.ok('/v1/workspaces/{id}/files/{path}' in doc.paths, 'the wildcard is named {path}')
  t.notOk(Object.keys(doc.paths).some(p => p.includes('{*}')), 'no {*} left')
})

t.test('a client generated from the document type-checks against a real call', async t => {
  const app = await build(t)
  const base = await listen(app)
  const user = await registerUser(base)
  const workspaceId = await createWorkspace(base, user)
  const written = expectStatus<WriteResult>(await request(base, 'PUT', `/v1/workspaces/${workspaceId}/files/src/a.ts`, { token: user.token, payload: { content: 'export {}' } }), 201, 'PUT')
  const doc = (await app.inject({ url: '/docs/json' })).json<Doc>()
  const types = astToString(await openapiTS(doc as never))

  const dir = await mkdtemp(join(tmpdir(), 'wb-openapi-'))
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
  await writeFile(join(dir, 'api.ts'), types)
  // The answer of a real call, typed by the generated client: a field the document does not
  // describe, or of another type, fails the compile below.
  await writeFile(join(dir, 'call.ts'), `import type { paths } from './api.js'
type Write = paths['/v1/workspaces/{id}/files/{path}']['put']
type Params = Write['parameters']['path']
const params: Params = { id: ${JSON.stringify(workspaceId)}, path: 'src/a.ts' }
type Body = NonNullable<Write['requestBody']>['content']['application/json']
const body: Body = { content: 'export {}' }
type Created = Write['responses']['201']['content']['application/json']
const answer: Created = ${JSON.stringify(written)}
const revision: number = answer.revision
const etag: string = answer.file.etag
export { params, body, revision, etag }
`)
  await writeFile(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: { strict: true, noEmit: true, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', skipLibCheck: true }, files: ['call.ts'] }))
  const tsc = join(ROOT_DIR, 'node_modules/typescript/bin/tsc')
  const run = await promisify(execFile)(process.execPath, [tsc, '-p', dir]).then(() => ({ ok: true, out: '' }), (err: { stdout?: string }) => ({ ok: false, out: err.stdout ?? String(err) }))
  t.ok(run.ok, `the generated client type-checks the call: ${run.out.slice(0, 2000)}`)
})

t.test('every route declares a success, its error statuses with their codes, its headers and content types', async t => {
  const app = await build(t)
  const doc = (await app.inject({ url: '/docs/json' })).json<Doc>()
  for (const [template, operations] of Object.entries(doc.paths)) {
    for (const [method, operation] of Object.entries(operations)) {
      const name = `${method.toUpperCase()} ${template}`
      const statuses = Object.keys(operation.responses)
      t.notOk(statuses.some(s => /X/i.test(s)), `${name}: no status range (4XX, 5XX)`)
      // The WebSocket upgrade answers 101; GET and DELETE of the stateless MCP endpoint only 405.
      if (template !== '/v1/ws' && !(template.endsWith('/mcp') && method !== 'post')) {
        t.ok(statuses.some(s => /^2\d\d$/.test(s)), `${name}: a 2xx`)
      }
      if (template.startsWith('/v1/') && template !== '/v1/ws') {
        for (const status of [429, 500, 503]) t.ok(statuses.includes(String(status)), `${name}: ${status}`)
        if (operation.security === undefined || operation.security.length > 0) {
          if (!template.startsWith('/v1/auth/')) t.same(declaredCodes(operation, 401), ['TOKEN_EXPIRED', 'UNAUTHENTICATED'], `${name}: 401 for a missing or bad token`)
        }
        if (operation.requestBody !== undefined) {
          t.ok(declaredCodes(operation, 415)?.includes('UNSUPPORTED_MEDIA_TYPE'), `${name}: 415 for a body of another type`)
          t.ok(declaredCodes(operation, 413)?.includes('PAYLOAD_TOO_LARGE'), `${name}: 413 for a body over its limit`)
        }
        for (const response of Object.values(operation.responses)) {
          t.ok(['x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset'].every(h => response.headers?.[h] !== undefined), `${name}: rate-limit headers`)
        }
      }
      for (const [status, response] of Object.entries(operation.responses)) {
        const code = Number(status)
        if (code === 204 || code === 304 || code === 101 || code === 202) {
          t.equal(response.content, undefined, `${name} ${status}: no content`)
          continue
        }
        if (code < 400 || code === 406) continue
        const codes = declaredCodes(operation, code) ?? []
        t.ok(codes.length > 0, `${name} ${status}: its codes`)
        t.same(response.content?.['application/json']?.schema?.properties?.statusCode?.enum, [code], `${name} ${status}: the error shape`)
        t.ok(codes.every(c => response.description.includes(c)), `${name} ${status}: the description names the codes`)
        if (code === 429 || code === 503) t.ok(response.headers?.['Retry-After'] !== undefined, `${name} ${status}: Retry-After`)
      }
    }
  }
  t.same(Object.keys(doc.components.headers ?? {}).sort(), ['x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset'], 'the rate-limit headers, once')

  const read = doc.paths['/v1/workspaces/{id}/files/{path}']?.get
  t.same(Object.keys(read?.responses['200']?.content ?? {}).sort(), ['application/json', 'application/octet-stream'], 'a read: JSON, or the raw bytes')
  t.ok(['ETag', 'X-Revision', 'Content-Disposition'].every(h => read?.responses['200']?.headers?.[h] !== undefined), 'a read: ETag, X-Revision, Content-Disposition')
  t.ok(read?.responses['304']?.headers?.ETag !== undefined, '304: ETag')
  t.same(Object.keys(doc.paths['/v1/sessions/{sid}/log.md']?.get?.responses['200']?.content ?? {}), ['text/markdown'], 'log.md: text/markdown')
  t.same(Object.keys(doc.paths['/v1/workspaces/{id}/search']?.post?.responses['200']?.content ?? {}).sort(), ['application/json', 'application/x-ndjson'], 'search: JSON or NDJSON')
  t.same(Object.keys(doc.paths['/metrics']?.get?.responses['200']?.content ?? {}), ['text/plain'], '/metrics: text')
  t.ok(doc.paths['/v1/workspaces/{id}/files/{path}']?.put?.responses['201']?.headers?.ETag !== undefined, 'a write: ETag')
  t.ok(doc.paths['/v1/workspaces/{id}/mcp']?.get?.responses['405']?.headers?.Allow !== undefined, 'MCP GET 405: Allow')
  // Examples on the main routes.
  const example = (template: string, method: string, status: string): unknown => doc.paths[template]?.[method]?.responses[status]?.content?.['application/json']?.example
  const bodyExample = (template: string, method: string): unknown => doc.paths[template]?.[method]?.requestBody?.content['application/json']?.example
  t.ok(bodyExample('/v1/auth/login', 'post') !== undefined && example('/v1/auth/login', 'post', '200') !== undefined, 'example: login')
  t.ok(bodyExample('/v1/workspaces', 'post') !== undefined && example('/v1/workspaces', 'post', '201') !== undefined, 'example: create a workspace')
  t.ok(bodyExample('/v1/workspaces/{id}/files/{path}', 'put') !== undefined && example('/v1/workspaces/{id}/files/{path}', 'put', '201') !== undefined, 'example: write a file')
  t.ok(example('/v1/workspaces/{id}/files/{path}', 'get', '200') !== undefined, 'example: read a file')
  t.ok(example('/v1/workspaces/{id}/tree', 'get', '200') !== undefined, 'example: tree')
  t.ok(example('/v1/workspaces/{id}/changes', 'get', '200') !== undefined, 'example: changes')
  t.ok(bodyExample('/v1/workspaces/{id}/operations/batch', 'post') !== undefined && example('/v1/workspaces/{id}/operations/batch', 'post', '200') !== undefined, 'example: batch')
})

/**
 * Real answers against the document: each request below is answered with the status and code it
 * names (so that the sample means something), and the document declares both for its route.
 */
async function answers (t: Test, target: Target, doc: Doc, method: Method, template: string, url: string, opts: Parameters<typeof request>[3], status: number, code?: string): Promise<Res> {
  const res = await request(target, method, url, opts)
  const name = `${method} ${template} → ${status}${code === undefined ? '' : ` ${code}`}`
  let actual: string | undefined
  try {
    actual = (JSON.parse(res.body) as { code?: string }).code
  } catch {}
  t.equal(res.statusCode, status, `${name}: answered (${res.body.slice(0, 200)})`)
  if (code !== undefined) t.equal(actual, code, `${name}: code`)
  const operation = doc.paths[template]?.[method.toLowerCase()]
  const declared = declaredCodes(operation, res.statusCode)
  t.ok(declared !== undefined, `${name}: the document declares ${res.statusCode} (it has ${Object.keys(operation?.responses ?? {}).join(', ')})`)
  if (res.statusCode >= 400 && res.statusCode !== 406) t.ok(actual !== undefined && declared?.includes(actual) === true, `${name}: the document declares ${String(actual)} under ${res.statusCode} (${String(declared)})`)
  return res
}

t.test('real answers: each status and code is one the document declares for its route', async t => {
  const app = await build(t, { MAX_FILE_BYTES: '1024' })
  const doc = (await app.inject({ url: '/docs/json' })).json<Doc>()
  const owner = await registerUser(app)
  const viewer = await registerUser(app)
  const stranger = await registerUser(app)
  const ws = await createWorkspace(app, owner)
  const strangerWs = await createWorkspace(app, stranger)
  expectStatus(await request(app, 'PUT', `/v1/workspaces/${ws}/members`, { token: owner.token, payload: { email: viewer.email, role: 'viewer' } }), 200, 'viewer')
  expectStatus(await request(app, 'PUT', `/v1/workspaces/${ws}/files/a.txt`, { token: owner.token, payload: { content: 'one\ntwo\n' } }), 201, 'a.txt')
  expectStatus(await request(app, 'PUT', `/v1/workspaces/${ws}/files/page.html`, { token: owner.token, payload: { content: '<p>hi</p>', mimeType: 'text/html' } }), 201, 'page.html')
  expectStatus(await request(app, 'PUT', `/v1/workspaces/${ws}/files/bin.dat`, { token: owner.token, payload: { content: '/w==', encoding: 'base64' } }), 201, 'bin.dat')
  expectStatus(await request(app, 'POST', `/v1/workspaces/${ws}/operations`, { token: owner.token, payload: { type: 'mkdir', path: '/d' } }), 200, 'mkdir')
  const W = '/v1/workspaces/{id}'
  const F = `${W}/files/{path}`
  const o = { token: owner.token }
  const expired = signJwt(accessClaims(owner.id, owner.sessionId, { iat: nowSeconds() - 3600, exp: nowSeconds() - 1800 }), { alg: 'HS256', secret: TEST_SECRET })
  const text = { headers: { 'content-type': 'text/plain' }, payload: 'x' }

  // Snapshots and forks.
  const S = `${W}/snapshots`
  await answers(t, app, doc, 'POST', S, `/v1/workspaces/${ws}/snapshots`, { ...o, payload: { name: 'v1' } }, 201)
  await answers(t, app, doc, 'POST', S, `/v1/workspaces/${ws}/snapshots`, { ...o, payload: { name: 'v1' } }, 409, 'SNAPSHOT_EXISTS')
  await answers(t, app, doc, 'POST', S, `/v1/workspaces/${ws}/snapshots`, { ...o, payload: { name: '../x' } }, 400, 'VALIDATION_FAILED')
  await answers(t, app, doc, 'POST', S, `/v1/workspaces/${ws}/snapshots`, { token: viewer.token, payload: { name: 'v2' } }, 403, 'FORBIDDEN')
  await answers(t, app, doc, 'GET', S, `/v1/workspaces/${ws}/snapshots`, o, 200)
  await answers(t, app, doc, 'GET', `${S}/{name}`, `/v1/workspaces/${ws}/snapshots/v1`, o, 200)
  await answers(t, app, doc, 'GET', `${S}/{name}`, `/v1/workspaces/${ws}/snapshots/none`, o, 404, 'SNAPSHOT_NOT_FOUND')
  await answers(t, app, doc, 'GET', `${S}/{name}`, `/v1/workspaces/${strangerWs}/snapshots/v1`, o, 404, 'WORKSPACE_NOT_FOUND')
  await answers(t, app, doc, 'DELETE', `${S}/{name}`, `/v1/workspaces/${ws}/snapshots/none`, o, 404, 'SNAPSHOT_NOT_FOUND')
  await answers(t, app, doc, 'DELETE', `${S}/{name}`, `/v1/workspaces/${ws}/snapshots/v1`, o, 204)
  await answers(t, app, doc, 'POST', `${W}/fork`, `/v1/workspaces/${ws}/fork`, { token: viewer.token, payload: { name: 'copy' } }, 201)
  await answers(t, app, doc, 'POST', `${W}/fork`, `/v1/workspaces/${ws}/fork`, { ...o, payload: {} }, 400, 'VALIDATION_FAILED')

  // Archives.
  const A = `${W}/archive`
  await answers(t, app, doc, 'GET', A, `/v1/workspaces/${ws}/archive?format=tar`, o, 200)
  await answers(t, app, doc, 'GET', A, `/v1/workspaces/${ws}/archive?format=zip&path=/missing`, o, 404, 'FILE_NOT_FOUND')
  await answers(t, app, doc, 'GET', A, `/v1/workspaces/${ws}/archive?format=rar`, o, 400, 'VALIDATION_FAILED')
  await answers(t, app, doc, 'POST', A, `/v1/workspaces/${ws}/archive?path=/in`, { ...o, headers: { 'content-type': 'application/zip' }, payload: 'not a zip' }, 400, 'INVALID_ARCHIVE')
  await answers(t, app, doc, 'POST', A, `/v1/workspaces/${ws}/archive?path=/in`, { ...o, payload: { a: 1 } }, 415, 'UNSUPPORTED_MEDIA_TYPE')
  await answers(t, app, doc, 'POST', A, `/v1/workspaces/${ws}/archive?path=/in`, { token: viewer.token, headers: { 'content-type': 'application/zip' }, payload: 'x' }, 403, 'FORBIDDEN')

  // Auth.
  await answers(t, app, doc, 'POST', '/v1/auth/login', '/v1/auth/login', { payload: { email: owner.email, password: 'wrong password' } }, 401, 'INVALID_CREDENTIALS')
  await answers(t, app, doc, 'POST', '/v1/auth/login', '/v1/auth/login', { payload: { email: owner.email } }, 400, 'VALIDATION_FAILED')
  await answers(t, app, doc, 'POST', '/v1/auth/login', '/v1/auth/login', text, 415, 'UNSUPPORTED_MEDIA_TYPE')
  await answers(t, app, doc, 'POST', '/v1/auth/login', '/v1/auth/login', { payload: { email: owner.email, password: PASSWORD } }, 200)
  await answers(t, app, doc, 'POST', '/v1/auth/register', '/v1/auth/register', { payload: { email: owner.email, password: PASSWORD } }, 409, 'EMAIL_TAKEN')
  await answers(t, app, doc, 'POST', '/v1/auth/refresh', '/v1/auth/refresh', { payload: { refreshToken: 'nope' } }, 401, 'UNAUTHENTICATED')
  await answers(t, app, doc, 'POST', '/v1/auth/logout', '/v1/auth/logout', { payload: { refreshToken: 'nope' } }, 204)
  await answers(t, app, doc, 'GET', '/v1/me', '/v1/me', {}, 401, 'UNAUTHENTICATED')
  await answers(t, app, doc, 'GET', '/v1/me', '/v1/me', { token: expired }, 401, 'TOKEN_EXPIRED')
  await answers(t, app, doc, 'GET', '/v1/me', '/v1/me', { ...o, headers: { 'x-session-id': 'not-a-uuid' } }, 400, 'VALIDATION_FAILED')
  await answers(t, app, doc, 'GET', '/v1/me', '/v1/me', { ...o, headers: { 'x-session-id': stranger.sessionId } }, 403, 'FORBIDDEN')

  // Workspaces and members.
  await answers(t, app, doc, 'POST', '/v1/workspaces', '/v1/workspaces', { ...o, payload: { name: '' } }, 400, 'VALIDATION_FAILED')
  await answers(t, app, doc, 'GET', W, `/v1/workspaces/${strangerWs}`, o, 404, 'WORKSPACE_NOT_FOUND')
  await answers(t, app, doc, 'GET', W, '/v1/workspaces/NOT-A-UUID', o, 400, 'VALIDATION_FAILED')
  await answers(t, app, doc, 'DELETE', W, `/v1/workspaces/${ws}`, { token: viewer.token }, 403, 'FORBIDDEN')
  await answers(t, app, doc, 'DELETE', W, `/v1/workspaces/${ws}`, { ...o, ...text }, 415, 'UNSUPPORTED_MEDIA_TYPE')
  await answers(t, app, doc, 'PUT', `${W}/members`, `/v1/workspaces/${ws}/members`, { ...o, payload: { email: 'nobody@example.com', role: 'editor' } }, 404, 'NOT_FOUND')
  await answers(t, app, doc, 'DELETE', `${W}/members/{userId}`, `/v1/workspaces/${ws}/members/${owner.id}`, o, 400, 'VALIDATION_FAILED')
  await answers(t, app, doc, 'GET', `${W}/members`, `/v1/workspaces/${strangerWs}/members`, o, 404, 'WORKSPACE_NOT_FOUND')

  // Reads: the headers the document describes are on the answer.
  const read = await answers(t, app, doc, 'GET', F, `/v1/workspaces/${ws}/files/a.txt`, o, 200)
  t.match(read.headers.etag, /^"\d+"$/, 'a read: ETag')
  t.match(read.headers['x-revision'], /^\d+$/, 'a read: X-Revision')
  const notModified = await answers(t, app, doc, 'GET', F, `/v1/workspaces/${ws}/files/a.txt`, { ...o, headers: { 'if-none-match': String(read.headers.etag) } }, 304)
  t.equal(notModified.body, '', '304: no body')
  t.equal(notModified.headers.etag, read.headers.etag, '304: ETag')
  const raw = await answers(t, app, doc, 'GET', F, `/v1/workspaces/${ws}/files/page.html?format=raw`, o, 200)
  t.match(raw.headers['content-type'], /^text\/html/, 'a raw read: the file\'s own type')
  t.match(raw.headers['content-disposition'], /^attachment; filename\*=UTF-8''page\.html$/, 'a raw read: Content-Disposition')
  t.ok(raw.headers.etag !== undefined && raw.headers['x-revision'] !== undefined, 'a raw read: ETag and X-Revision')
  await answers(t, app, doc, 'GET', `${W}/files`, `/v1/workspaces/${ws}/files`, o, 200)
  await answers(t, app, doc, 'GET', F, `/v1/workspaces/${ws}/files/missing.txt`, o, 404, 'FILE_NOT_FOUND')
  await answers(t, app, doc, 'GET', F, `/v1/workspaces/${ws}/files/d?format=raw`, o, 400, 'IS_A_DIRECTORY')
  await answers(t, app, doc, 'GET', F, `/v1/workspaces/${ws}/files/bin.dat?lines=1-2`, o, 415, 'NOT_TEXT')
  await answers(t, app, doc, 'GET', F, `/v1/workspaces/${ws}/files/a%5Cb`, o, 400, 'INVALID_PATH')
  await answers(t, app, doc, 'GET', F, `/v1/workspaces/${strangerWs}/files/a.txt`, o, 404, 'WORKSPACE_NOT_FOUND')

  // Writes.
  await answers(t, app, doc, 'PUT', F, `/v1/workspaces/${ws}/files/a.txt`, { ...o, headers: { 'if-match': '"999"' }, payload: { content: 'x' } }, 412, 'PRECONDITION_FAILED')
  await answers(t, app, doc, 'PUT', F, `/v1/workspaces/${ws}/files/a.txt`, { token: viewer.token, payload: { content: 'x' } }, 403, 'FORBIDDEN')
  await answers(t, app, doc, 'PUT', F, `/v1/workspaces/${ws}/files/big.txt`, { ...o, payload: { content: 'x'.repeat(1025) } }, 413, 'FILE_TOO_LARGE')
  await answers(t, app, doc, 'PUT', F, `/v1/workspaces/${ws}/files/big.txt`, { ...o, payload: { content: 'x'.repeat(2 * 1024 * 1024) } }, 413, 'PAYLOAD_TOO_LARGE')
  await answers(t, app, doc, 'PUT', F, `/v1/workspaces/${ws}/files/a.txt`, { ...o, ...text }, 415, 'UNSUPPORTED_MEDIA_TYPE')
  await answers(t, app, doc, 'PUT', F, `/v1/workspaces/${ws}/files/d`, { ...o, payload: { content: 'x' } }, 400, 'IS_A_DIRECTORY')
  await answers(t, app, doc, 'PUT', F, `/v1/workspaces/${ws}/files/a.txt/x`, { ...o, payload: { content: 'x' } }, 409, 'NOT_A_DIRECTORY')
  await answers(t, app, doc, 'PUT', F, `/v1/workspaces/${ws}/files/k.txt`, { ...o, headers: { 'idempotency-key': 'k1' }, payload: { content: 'x' } }, 201)
  await answers(t, app, doc, 'PUT', F, `/v1/workspaces/${ws}/files/k.txt`, { ...o, headers: { 'idempotency-key': 'k1' }, payload: { content: 'y' } }, 422, 'IDEMPOTENCY_KEY_REUSED')
  await answers(t, app, doc, 'DELETE', F, `/v1/workspaces/${ws}/files/missing.txt`, o, 404, 'FILE_NOT_FOUND')
  await answers(t, app, doc, 'DELETE', F, `/v1/workspaces/${ws}/files/a.txt`, { ...o, headers: { 'if-match': '"999"' } }, 412, 'PRECONDITION_FAILED')
  await answers(t, app, doc, 'DELETE', `${W}/files`, `/v1/workspaces/${ws}/files`, o, 400, 'INVALID_PATH')
  const op = `${W}/operations`
  const opUrl = `/v1/workspaces/${ws}/operations`
  await answers(t, app, doc, 'POST', op, opUrl, { ...o, payload: { type: 'create', path: '/a.txt', content: 'x' } }, 409, 'FILE_EXISTS')
  await answers(t, app, doc, 'POST', op, opUrl, { ...o, payload: { type: 'move', path: '/d', newPath: '/d/e' } }, 400, 'INVALID_MOVE')
  await answers(t, app, doc, 'POST', op, opUrl, { ...o, payload: { type: 'copy', path: '/a.txt', newPath: '/page.html' } }, 409, 'TARGET_EXISTS')
  await answers(t, app, doc, 'POST', op, opUrl, { ...o, payload: { type: 'edit', path: '/a.txt', edits: [{ oldText: 'zzz', newText: 'y' }] } }, 409, 'EDIT_NO_MATCH')
  await answers(t, app, doc, 'POST', op, opUrl, { ...o, payload: { type: 'edit', path: '/bin.dat', edits: [{ oldText: 'a', newText: 'b' }] } }, 415, 'NOT_TEXT')
  await answers(t, app, doc, 'POST', op, opUrl, { ...o, payload: { type: 'update', path: '/missing.txt', content: 'x' } }, 404, 'FILE_NOT_FOUND')
  await answers(t, app, doc, 'POST', op, opUrl, { ...o, payload: { type: 'nope', path: '/a.txt' } }, 400, 'VALIDATION_FAILED')
  const batch = `${W}/operations/batch`
  await answers(t, app, doc, 'POST', batch, `/v1/workspaces/${ws}/operations/batch`, { ...o, payload: { operations: [{ type: 'mkdir', path: '/e' }, { type: 'create', path: '/a.txt', content: 'x' }] } }, 409, 'FILE_EXISTS')
  await answers(t, app, doc, 'POST', batch, `/v1/workspaces/${ws}/operations/batch`, { ...o, payload: { operations: [] } }, 400, 'VALIDATION_FAILED')
  await answers(t, app, doc, 'POST', batch, `/v1/workspaces/${ws}/operations/batch`, { ...o, payload: { operations: [{ type: 'mkdir', path: '/e' }] } }, 200)

  // History, revert, tree, changes.
  await answers(t, app, doc, 'GET', `${W}/history/{path}`, `/v1/workspaces/${strangerWs}/history/a.txt`, o, 404, 'WORKSPACE_NOT_FOUND')
  await answers(t, app, doc, 'GET', `${W}/history/{path}`, `/v1/workspaces/${ws}/history/a.txt`, o, 200)
  await answers(t, app, doc, 'POST', `${W}/revert`, `/v1/workspaces/${ws}/revert`, { ...o, payload: { bogus: 1 } }, 400, 'VALIDATION_FAILED')
  await answers(t, app, doc, 'POST', `${W}/revert`, `/v1/workspaces/${ws}/revert`, { token: viewer.token, payload: { toRevision: 1 } }, 403, 'FORBIDDEN')
  await answers(t, app, doc, 'GET', `${W}/tree`, `/v1/workspaces/${ws}/tree?path=/a.txt`, o, 409, 'NOT_A_DIRECTORY')
  await answers(t, app, doc, 'GET', `${W}/tree`, `/v1/workspaces/${ws}/tree?path=/nope`, o, 404, 'FILE_NOT_FOUND')
  await answers(t, app, doc, 'GET', `${W}/tree`, `/v1/workspaces/${ws}/tree?cursor=@`, o, 400, 'VALIDATION_FAILED')
  await answers(t, app, doc, 'GET', `${W}/changes`, `/v1/workspaces/${strangerWs}/changes`, o, 404, 'WORKSPACE_NOT_FOUND')
  await answers(t, app, doc, 'GET', `${W}/changes`, `/v1/workspaces/${ws}/changes?since=-1`, o, 400, 'VALIDATION_FAILED')

  // Search, sessions, stats, MCP.
  await answers(t, app, doc, 'POST', `${W}/search`, `/v1/workspaces/${ws}/search`, { ...o, payload: { query: '(', isRegex: true } }, 400, 'INVALID_PATTERN')
  const found = await answers(t, app, doc, 'POST', `${W}/search`, `/v1/workspaces/${ws}/search`, { ...o, payload: { query: 'one' } }, 200)
  t.match(found.json(), { matches: [{ path: '/a.txt', line: 1 }] }, 'search: JSON')
  const streamed = await answers(t, app, doc, 'POST', `${W}/search`, `/v1/workspaces/${ws}/search`, { ...o, headers: { accept: 'application/x-ndjson' }, payload: { query: 'one' } }, 200)
  t.match(streamed.headers['content-type'], /^application\/x-ndjson/, 'search: NDJSON')
  t.match(streamed.headers['x-revision'], /^\d+$/, 'search: X-Revision')
  await answers(t, app, doc, 'GET', `${W}/find`, `/v1/workspaces/${strangerWs}/find?q=a`, o, 404, 'WORKSPACE_NOT_FOUND')
  await answers(t, app, doc, 'GET', '/v1/stats', '/v1/stats', o, 403, 'FORBIDDEN')
  await answers(t, app, doc, 'GET', '/v1/sessions/{sid}/activity', `/v1/sessions/${stranger.sessionId}/activity`, o, 404, 'NOT_FOUND')
  await answers(t, app, doc, 'GET', '/v1/sessions/{sid}/activity', `/v1/sessions/${owner.sessionId}/activity?cursor=x`, o, 400, 'VALIDATION_FAILED')
  await answers(t, app, doc, 'GET', '/v1/sessions/{sid}/log.md', `/v1/sessions/${stranger.sessionId}/log.md`, o, 404, 'NOT_FOUND')
  const log = await answers(t, app, doc, 'GET', '/v1/sessions/{sid}/log.md', `/v1/sessions/${owner.sessionId}/log.md`, o, 200)
  t.match(log.headers['content-type'], /^text\/markdown/, 'log.md: text/markdown')
  const mcpGet = await answers(t, app, doc, 'GET', `${W}/mcp`, `/v1/workspaces/${ws}/mcp`, o, 405, 'METHOD_NOT_ALLOWED')
  t.equal(mcpGet.headers.allow, 'POST', 'MCP GET: Allow')
  await answers(t, app, doc, 'DELETE', `${W}/mcp`, `/v1/workspaces/${strangerWs}/mcp`, o, 404, 'WORKSPACE_NOT_FOUND')
  await answers(t, app, doc, 'POST', `${W}/mcp`, `/v1/workspaces/${ws}/mcp`, { ...o, headers: { accept: 'application/json' }, payload: { jsonrpc: '2.0', id: 1, method: 'tools/list' } }, 406)
  await answers(t, app, doc, 'GET', '/health', '/health', {}, 200)
  await answers(t, app, doc, 'GET', '/ready', '/ready', {}, 200)
  await answers(t, app, doc, 'GET', '/metrics', '/metrics', {}, 200)
})

t.test('rate limited: 429 RATE_LIMITED as declared, with Retry-After and the rate-limit headers', async t => {
  const app = await build(t, { RATE_LIMIT_ENABLED: 'true', RATE_LIMIT_MAX: '3', AUTH_RATE_LIMIT_MAX: '1' })
  const doc = (await app.inject({ url: '/docs/json' })).json<Doc>()
  // Registering spends the address's auth budget (1); the user's budget is 3 calls.
  const user = await registerUser(app)
  const first = await answers(t, app, doc, 'GET', '/v1/me', '/v1/me', { token: user.token }, 200)
  t.same([first.headers['x-ratelimit-limit'], first.headers['x-ratelimit-remaining']], ['3', '2'], 'a 200 carries the rate-limit headers')
  t.match(first.headers['x-ratelimit-reset'], /^\d+$/, 'x-ratelimit-reset')
  await answers(t, app, doc, 'GET', '/v1/me', '/v1/me', { token: user.token }, 200)
  await answers(t, app, doc, 'GET', '/v1/workspaces', '/v1/workspaces', { token: user.token }, 200)
  const limited = await answers(t, app, doc, 'GET', '/v1/me', '/v1/me', { token: user.token }, 429, 'RATE_LIMITED')
  t.match(limited.headers['retry-after'], /^\d+$/, 'Retry-After')
  t.ok(['x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset'].every(h => limited.headers[h] !== undefined), 'the rate-limit headers on the 429')
  await answers(t, app, doc, 'POST', '/v1/auth/login', '/v1/auth/login', { payload: { email: user.email, password: PASSWORD } }, 429, 'RATE_LIMITED')
})
