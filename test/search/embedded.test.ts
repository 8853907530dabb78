import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PASSWORD, spawnServer } from '../helpers/app.js'
import { expectStatus, request, type AuthResult } from '../helpers/http.js'
import type { FindResult, SearchResult } from '../helpers/search.js'

/**
 * Search on the embedded database (PGlite, no DATABASE_URL): the pg_trgm extension is loaded, the
 * migration creates the trigram index, and searches with and without a usable trigram answer.
 */

t.test('search and find on the embedded PGlite database', { timeout: 240_000 }, async t => {
  const dataDir = mkdtempSync(join(tmpdir(), 'wb-search-embedded-'))
  t.teardown(() => { rmSync(dataDir, { recursive: true, force: true }) })
  const server = await spawnServer(t, { baseEnv: 'user', env: { DATA_DIR: dataDir, OVERLOAD_MAX_EVENT_LOOP_DELAY_MS: '0', LOG_LEVEL: 'warn' }, readyTimeoutMs: 120_000 })
  t.teardown(() => { if (t.passing() === false) t.comment(server.output().slice(-4000)) })
  const { accessToken: token } = expectStatus<AuthResult>(await request(server.base, 'POST', '/v1/auth/register', { payload: { email: `search-${Date.now()}@example.com`, password: PASSWORD } }), 201, 'register')
  const ws = expectStatus<{ id: string }>(await request(server.base, 'POST', '/v1/workspaces', { token, payload: { name: 'search' } }), 201, 'workspace').id
  // More files than the prefilter's threshold, so the trigram index is used.
  const operations = Array.from({ length: 60 }, (_, i) => ({
    type: 'create',
    path: `/src/m${i}.ts`,
    content: `export function handler${i} () {\n  return 'value ${i}'\n}\n${i % 10 === 0 ? 'const needleFound = true\n' : ''}`
  }))
  operations.push({ type: 'create', path: '/café/ünïcode.txt', content: 'Straße und Grüße\n' })
  expectStatus(await request(server.base, 'POST', `/v1/workspaces/${ws}/operations/batch`, { token, payload: { operations } }), 200, 'batch')

  const search = async (body: Record<string, unknown>): Promise<SearchResult> =>
    expectStatus<SearchResult>(await request(server.base, 'POST', `/v1/workspaces/${ws}/search`, { token, payload: body }), 200, `search ${JSON.stringify(body)}`)
  const literal = await search({ query: 'needleFound' })
  t.same(literal.matches.map(m => [m.path, m.line, m.column]), [0, 10, 20, 30, 40, 50].map(i => [`/src/m${i}.ts`, 4, 7]).sort(), 'a literal with trigrams (through the index)')
  t.equal(literal.filesSearched, 61, 'every file counted, the ruled-out ones too')
  const insensitive = await search({ query: 'NEEDLEFOUND', caseSensitive: false })
  t.equal(insensitive.matches.length, 6, 'case-insensitive (ILIKE through the index)')
  const regex = await search({ query: 'value [1-3]\\b', isRegex: true })
  t.equal(regex.matches.length, 3, 'a regex with a trigram')
  const none = await search({ query: '\\d{2}\\b', isRegex: true, include: ['m1*.ts'] })
  t.ok(none.matches.length > 0, 'a regex with no usable trigram')
  const unicode = await search({ query: 'grüße' })
  t.same(unicode.matches.map(m => [m.path, m.column]), [['/café/ünïcode.txt', 12]], 'non-ASCII text, smart case')

  const find = expectStatus<FindResult>(await request(server.base, 'GET', `/v1/workspaces/${ws}/find?q=m12`, { token }), 200, 'find')
  t.equal(find.results[0]?.path, '/src/m12.ts', 'find')
})
