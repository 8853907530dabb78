import t from 'tap'
import { buildApp } from '../../src/app.js'
import { createTestDatabase, listen, registerUser, testConfig } from '../helpers/app.js'
import { errorShapeProblem, sendRaw } from '../helpers/fuzz.js'

/**
 * HTTP that Node's parser refuses never reaches a route: Fastify's default answer to it had no
 * `code` (`{"error":"Bad Request","message":"Client Error","statusCode":400}`), and 431 for
 * headers over the limit. A request whose chunked body broke off was logged as a 503 "database
 * unavailable" (its ECONNRESET). Found by the raw-HTTP part of test/contract/openapi-fuzz.test.ts.
 */

t.test('requests the HTTP parser refuses are answered in the error shape, and log no error', async t => {
  const logs: Array<{ level: number, msg?: string }> = []
  const stream = { write: (line: string) => { logs.push(JSON.parse(line) as { level: number }) } }
  const app = await buildApp(testConfig({ DATABASE_URL: await createTestDatabase(t) }), { logger: { level: 'warn', stream } })
  t.teardown(() => app.close())
  const base = await listen(app)
  const user = await registerUser(app)
  const put = (extra: string[], body: string): string =>
    ['PUT /v1/workspaces/00000000-0000-4000-8000-000000000000/files/a.txt HTTP/1.1', 'Host: x', `Authorization: Bearer ${user.token}`,
      'Content-Type: application/json', ...extra].join('\r\n') + '\r\n\r\n' + body
  const cases: Array<[string, string, number, string]> = [
    ['NUL in a header', 'GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\u0000b\r\n\r\n', 400, 'VALIDATION_FAILED'],
    ['a garbled request line', 'GARBAGE\r\n\r\n', 400, 'VALIDATION_FAILED'],
    ['two Content-Lengths', 'POST /v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}', 400, 'VALIDATION_FAILED'],
    ['headers over the limit', `GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, 413, 'PAYLOAD_TOO_LARGE'],
    ['a bad chunk size', put(['Transfer-Encoding: chunked'], 'zz\r\n{}\r\n0\r\n\r\n'), 400, 'VALIDATION_FAILED'],
    ['an unknown transfer coding', put(['Transfer-Encoding: gzip'], '{"content":"x"}'), 400, 'VALIDATION_FAILED']
  ]
  for (const [label, raw, status, code] of cases) {
    const reply = await sendRaw(base, Buffer.from(raw, 'latin1'))
    t.equal(reply.statusCode, status, `${label}: status`)
    t.equal(errorShapeProblem(reply.statusCode, reply.headers['content-type'], reply.body), undefined, `${label}: the error shape`)
    t.match(JSON.parse(reply.body), { code }, `${label}: ${code}`)
  }
  await new Promise(resolve => setTimeout(resolve, 100))
  t.strictSame(logs.filter(l => l.level >= 50).map(l => l.msg), [], 'no error was logged')
})
