import t from 'tap'
import { execFile } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import SwaggerParser from '@apidevtools/swagger-parser'
import openapiTS, { astToString } from 'openapi-typescript'
import { build, createWorkspace, listen, registerUser, ROOT_DIR } from '../helpers/app.js'
import { expectStatus, request, type WriteResult } from '../helpers/http.js'

/**
 * The OpenAPI document (issue "Contract and observability", item 1): valid OpenAPI 3, every
 * templated path parameter declared and no other, and usable: a client generated from it
 * (openapi-typescript) type-checks against a real call's answer.
 */

interface Operation { parameters?: Array<{ name: string, in: string, required?: boolean }> }
type Doc = { openapi: string, paths: Record<string, Record<string, Operation>> }

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
