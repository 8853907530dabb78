import t from 'tap'
import { setup } from '../helpers/files.js'
import { expectStatus } from '../helpers/http.js'
import { insertAll, type FindResult } from '../helpers/search.js'
import { fuzzyQuery, fuzzyScore, PathIndex, rankPaths } from '../../src/search/fuzzy.js'

/** The fuzzy file finder: fzf-style ranking (src/search/fuzzy.ts) and GET …/find. */

const ranked = (paths: string[], q: string, limit = 50): string[] => rankPaths(paths, q, limit).map(h => h.path)

t.test('ranking', async t => {
  t.same(ranked(['/src/components/button/index.ts', '/lib/b/u/t/t/o/n.ts', '/docs/button-guide.md', '/src/button.ts'], 'button'),
    ['/src/button.ts', '/docs/button-guide.md', '/src/components/button/index.ts', '/lib/b/u/t/t/o/n.ts'], 'the exact file name first, scattered characters last')
  t.same(ranked(['/a/b/c.ts', '/x/abc.ts', '/xaybzc.ts'], 'abc'), ['/x/abc.ts', '/a/b/c.ts', '/xaybzc.ts'], 'consecutive, then word starts, then gaps')
  t.same(ranked(['/deep/er/foo.ts', '/a/foo.ts', '/a/b/foo.ts'], 'foo'), ['/a/foo.ts', '/a/b/foo.ts', '/deep/er/foo.ts'], 'shorter paths break ties')
  t.equal(ranked(['/src/userService.ts', '/src/users/service.ts', '/src/useless.ts'], 'us').length, 3, 'every path with the characters is ranked')
  t.same(ranked(['/src/UserService.ts', '/src/userservice.ts'], 'US'), ['/src/UserService.ts'], 'smart case: an upper-case query is case-sensitive')
  t.same(ranked(['/src/UserService.ts', '/src/userservice.ts'], 'us').length, 2, 'a lower-case query is not')
  t.same(ranked(['/src/userService.ts', '/src/userservice.ts'], 'uS')[0], '/src/userService.ts', 'camelCase boundary')
  t.same(ranked(['/a.ts', '/b.ts'], 'zz'), [], 'no match, no result')
  t.same(ranked(['/a/b c.ts'], 'b c'), ['/a/b c.ts'], 'spaces in the query are ignored')
  t.equal(ranked(Array.from({ length: 100 }, (_, i) => `/f${i}.ts`), 'f', 7).length, 7, 'limit')
  t.same(rankPaths(['/x.ts'], '', 5), [{ path: '/x.ts', score: 0, positions: [] }], 'an empty query lists paths')

  for (const [q, path] of [['srcbtn', '/src/button.ts'], ['sbi', '/src/components/button/index.ts'], ['ts', '/lib/b/u/t/t/o/n.ts'], ['éa', '/café/a.ts']] as const) {
    const r = fuzzyScore(fuzzyQuery(q), path)
    t.ok(r !== undefined, `${q} matches ${path}`)
    const positions = r?.positions ?? []
    t.equal(positions.length, q.length, `${q}: one position per character`)
    t.ok(positions.every((p, i) => path[p]?.toLowerCase() === q[i] && (i === 0 || p > (positions[i - 1] ?? -1))), `${q}: positions ${JSON.stringify(positions)} point at the characters, in order`)
  }
  // The best alignment, not the first: `index.ts` at the end rather than the first i, n, d…
  const best = fuzzyScore(fuzzyQuery('index'), '/internal/dex/index.ts')
  t.same(best?.positions, [14, 15, 16, 17, 18], 'the consecutive run at a word start wins over earlier scattered characters')
})

t.test('10,000 paths: the best 50, best first (its speed is measured by the bench, scenario 10)', async t => {
  const paths: string[] = []
  for (let d = 0; d < 100; d++) for (let f = 0; f < 100; f++) paths.push(`/packages/pkg${d}/src/components/module${f}/index${f % 7}.ts`)
  const index = new PathIndex(paths)
  const times: number[] = []
  for (const q of ['index', 'pkg5mod', 'srccompidx', 'p1m2i3', 'zzz']) {
    const t0 = performance.now()
    const hits = index.rank(q, 50)
    times.push(performance.now() - t0)
    // The same ranking as scoring every path and sorting them all.
    const all = paths.flatMap(path => {
      const r = fuzzyScore(fuzzyQuery(q), path)
      return r === undefined ? [] : [{ path, score: r.score }]
    }).sort((a, b) => b.score - a.score || a.path.length - b.path.length || (a.path < b.path ? -1 : 1))
    t.same(hits.map(h => h.path), all.slice(0, 50).map(h => h.path), `${q}: the best ${Math.min(50, all.length)} of ${all.length} matches, in order`)
  }
  t.comment(`rank 10,000 paths: ${times.map(x => x.toFixed(1)).join(', ')} ms`)
})

t.test('GET …/find', async t => {
  const c = await setup(t)
  const files = new Map<string, string>()
  for (const p of ['/src/app.ts', '/src/lib/apple.ts', '/test/app.test.ts', '/README.md', '/src/a/p/p.ts']) files.set(p, 'x\n')
  const revision = await insertAll(c, files)
  const res = expectStatus<FindResult>(await c.getUrl(`/v1/workspaces/${c.ws}/find?q=app&limit=3`), 200, 'find')
  t.equal(res.revision, revision, 'the revision the paths are from')
  t.equal(res.results.length, 3, 'limit')
  t.equal(res.results[0]?.path, '/src/app.ts', 'the exact file name first')
  t.same(res.results[0]?.positions, [5, 6, 7])
  t.ok(res.results.every((r, i, all) => i === 0 || (all[i - 1]?.score ?? 0) >= r.score), 'best first')
  t.notOk(res.results.some(r => r.path === '/src/a' || r.path === '/src/lib'), 'files only, not directories')
  await c.write('/src/app2.ts', 'y\n')
  const after = expectStatus<FindResult>(await c.getUrl(`/v1/workspaces/${c.ws}/find?q=app2`), 200, 'find after a write')
  t.equal(after.results[0]?.path, '/src/app2.ts', 'a file written since is found (the path list follows the revision)')
  const bad = await c.getUrl(`/v1/workspaces/${c.ws}/find?q=a&limit=0`)
  t.equal(bad.statusCode, 400, 'limit 0: 400')
})
