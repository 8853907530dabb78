import t from 'tap'
import { isError, request } from '../helpers/http.js'
import { setup } from '../helpers/files.js'

/**
 * `1e400` is a JSON number and a query value that Ajv coerces to a number: Infinity, which Ajv's
 * `type: integer` took for an integer. So `GET …/changes?since=1e400` answered 200 `reset: true`
 * and a body's `toRevision: 1e400` reached the service. Found by the OpenAPI-driven suite
 * (test/contract/openapi-fuzz.test.ts). Every integer is finite: 400 VALIDATION_FAILED.
 */

t.test('query integers written 1e400 (Infinity once coerced) are 400 VALIDATION_FAILED', async t => {
  const c = await setup(t)
  await c.write('/a.txt', 'a')
  const before = await c.revision()
  const ws = `/v1/workspaces/${c.ws}`
  for (const value of ['1e400', '-1e400', 'Infinity']) {
    for (const url of [
      `${ws}/changes?since=${value}`, `${ws}/changes?limit=${value}`, `${ws}/files/a.txt?revision=${value}`, `${ws}/tree?depth=${value}`,
      `${ws}/tree?limit=${value}`, `${ws}/history/a.txt?limit=${value}`, `/v1/sessions/${c.user.sessionId}/activity?limit=${value}`
    ]) {
      isError(t, await c.getUrl(url), 400, 'VALIDATION_FAILED', url.replace(c.ws, '{id}'))
    }
  }
  // Big but finite, past the head: still the contract's reset.
  const res = await c.getUrl(`${ws}/changes?since=9007199254740991`)
  t.equal(res.statusCode, 200, res.body)
  t.equal(res.json<{ reset?: boolean }>().reset, true)
  await c.unchanged(t, before)
})

t.test('body integers written 1e400 are 400 VALIDATION_FAILED, with the schema error', async t => {
  const c = await setup(t)
  await c.write('/a.txt', 'a')
  const before = await c.revision()
  for (const value of ['1e400', '-1e400']) {
    const res = await request(c.app, 'POST', `/v1/workspaces/${c.ws}/revert`, { token: c.user.token, payload: `{"toRevision":${value},"dryRun":true}` })
    isError(t, res, 400, 'VALIDATION_FAILED', { label: `toRevision ${value}`, details: { errors: [{ path: '/toRevision' }] } })
  }
  await c.unchanged(t, before)
})
