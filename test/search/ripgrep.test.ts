import t from 'tap'
import { setup } from '../helpers/files.js'
import { expectStatus } from '../helpers/http.js'
import { comparePaths } from '../../src/search/tree.js'
import { corpus, diff, exportToDisk, insertAll, lineKeys, rg, searchApi, writeAll, type SearchResult } from '../helpers/search.js'

/**
 * Issue 13, "semantics match ripgrep": the same query over the same files gives the same set of
 * (path, line) matches as `rg` on a real corpus (several thousand .d.ts files from node_modules,
 * written into a workspace through the batch API and to a temporary folder).
 */

const SPECIAL: Array<[string, string | Buffer]> = [
  ['/special/crlf.txt', 'foo bar\r\nbar foo\r\nfoo\r\n'],
  ['/special/unicode.txt', 'Grüße an die Straße\nÉCOLE école Ecole\n😀 emoji then Promise<void>\nΣίσυφος σίσυφος\n'],
  ['/special/binary.bin', Buffer.concat([Buffer.from('Promise<void> readonly\0\0\x01'), Buffer.alloc(64, 0)])],
  ['/.hidden/dot.d.ts', 'export declare function hidden(): Promise<void>\n'],
  ['/special/words.txt', 'a -foo b\nx-foo\n-foo\nfoo-bar -foo-\nfoo foo\n'],
  ['/special/no-newline.txt', 'last line without newline foo'],
  ['/special/long.txt', 'x'.repeat(5000) + ' needleword ' + 'y'.repeat(5000) + '\n']
]

t.test('search answers the lines rg answers', { timeout: 180_000 }, async t => {
  const c = await setup(t, { SEARCH_TIMEOUT_MS: '60000' })
  const files = corpus(3000, 9 * 1024 * 1024)
  const all = new Map<string, string | Buffer>([...files, ...SPECIAL])
  const t0 = performance.now()
  // A few hundred files through the batch API (the write path as clients use it), the rest inserted directly.
  const viaApi = new Map([...files].slice(0, 300))
  await writeAll(c, viaApi)
  await insertAll(c, new Map([...files].slice(300)))
  const special = SPECIAL.map(([path, content]) => typeof content === 'string'
    ? { type: 'create', path, content }
    : { type: 'create', path, content: content.toString('base64'), encoding: 'base64' })
  expectStatus(await c.batch(special), 200, 'special files')
  t.comment(`${all.size} files written in ${Math.round(performance.now() - t0)} ms`)
  const dir = exportToDisk(t, all)
  t.ok(files.size >= 2000, `a corpus of ${files.size} files`)

  interface Case { name: string, body: Record<string, unknown>, args: string[], paths?: string[], columns?: boolean }
  const cases: Case[] = [
    { name: 'literal, smart case with an upper-case letter', body: { query: 'Promise<void>' }, args: ['-S', '-F', '-e', 'Promise<void>'], columns: true },
    { name: 'literal, smart case all lower-case (insensitive)', body: { query: 'eventemitter' }, args: ['-S', '-F', '-e', 'eventemitter'], columns: true },
    { name: 'literal, case-sensitive', body: { query: 'eventemitter', caseSensitive: true }, args: ['-s', '-F', '-e', 'eventemitter'] },
    { name: 'literal, case-insensitive', body: { query: 'PROMISE<VOID>', caseSensitive: false }, args: ['-i', '-F', '-e', 'PROMISE<VOID>'] },
    { name: 'literal with regex metacharacters', body: { query: 'fs.readFile(' }, args: ['-S', '-F', '-e', 'fs.readFile('] },
    { name: 'literal, non-ASCII, insensitive', body: { query: 'école', caseSensitive: false }, args: ['-i', '-F', '-e', 'école'] },
    { name: 'regex', body: { query: 'interface \\w+Options\\b', isRegex: true }, args: ['-S', '-e', 'interface \\w+Options\\b'], columns: true },
    { name: 'regex with alternation and optional group', body: { query: '\\bfs\\.(read|write)File(Sync)?\\(', isRegex: true }, args: ['-S', '-e', '\\bfs\\.(read|write)File(Sync)?\\('] },
    { name: 'regex with no usable trigram', body: { query: '^\\s*\\}\\);?\\s*$', isRegex: true, include: ['@types/**'] }, args: ['-S', '-e', '^\\s*\\}\\);?\\s*$', '-g', '@types/**'] },
    { name: 'regex, smart case from a class', body: { query: '[a-z]+listener\\(', isRegex: true }, args: ['-S', '-e', '[a-z]+listener\\('] },
    { name: 'regex, Unicode classes', body: { query: '\\w+ße\\b', isRegex: true }, args: ['-S', '-e', '\\w+ße\\b'] },
    { name: 'regex, anchors', body: { query: '^export declare function \\w+\\(\\): void;$', isRegex: true }, args: ['-S', '-e', '^export declare function \\w+\\(\\): void;$'] },
    { name: 'whole word, literal', body: { query: 'Buffer', wholeWord: true }, args: ['-S', '-w', '-F', '-e', 'Buffer'] },
    { name: 'whole word, regex', body: { query: '\\w+Sync', isRegex: true, wholeWord: true, include: ['@types/node/**'] }, args: ['-S', '-w', '-e', '\\w+Sync', '-g', '@types/node/**'] },
    { name: 'whole word with non-word edges', body: { query: '-foo', wholeWord: true }, args: ['-S', '-w', '-F', '-e', '-foo'] },
    { name: 'include, basename glob', body: { query: 'readonly', include: ['{fs,http,net}.d.ts'] }, args: ['-S', '-F', '-e', 'readonly', '-g', '{fs,http,net}.d.ts'] },
    { name: 'include, anchored glob with **', body: { query: 'interface', include: ['typescript/lib/lib.es20*.d.ts'] }, args: ['-S', '-F', '-e', 'interface', '-g', 'typescript/lib/lib.es20*.d.ts'] },
    { name: 'exclude a directory', body: { query: 'Promise<void>', exclude: ['typescript', '@types/node/**'] }, args: ['-S', '-F', '-e', 'Promise<void>', '-g', '!typescript', '-g', '!@types/node/**'] },
    { name: 'include and exclude, [...] and ?', body: { query: 'Symbol.iterator', include: ['*.d.ts'], exclude: ['lib.es201[5-7].*.d.ts', 'a?c*'] }, args: ['-S', '-F', '-e', 'Symbol.iterator', '-g', '*.d.ts', '-g', '!lib.es201[5-7].*.d.ts', '-g', '!a?c*'] },
    { name: 'negated include', body: { query: 'Promise<void>', include: ['!*.d.ts'] }, args: ['-S', '-F', '-e', 'Promise<void>', '-g', '!*.d.ts'] },
    { name: 'dotfiles', body: { query: 'hidden()' }, args: ['-S', '-F', '-e', 'hidden()'] },
    { name: 'CRLF lines and a last line without newline', body: { query: 'foo$', isRegex: true, path: '/special' }, args: ['-S', '-e', 'foo$'], paths: ['special'] },
    { name: 'subtree', body: { query: 'export', path: '/@types/node' }, args: ['-S', '-F', '-e', 'export'], paths: ['@types/node'] },
    { name: 'a single file as the path', body: { query: 'interface', path: '/typescript/lib/lib.es5.d.ts' }, args: ['-S', '-F', '-e', 'interface'], paths: ['typescript/lib/lib.es5.d.ts'] }
  ]

  for (const k of cases) {
    const ours = await searchApi(c, { maxResults: 10_000, ...k.body })
    const theirs = await rg(dir, k.args, k.paths)
    t.equal(ours.truncated, false, `${k.name}: not truncated`)
    const keys = lineKeys(ours)
    t.ok(theirs.matches.size > 0, `${k.name}: rg finds ${theirs.matches.size} lines`)
    t.same(diff(keys, theirs.matches), { onlyOurs: [], onlyRg: [] }, `${k.name}: the same ${theirs.matches.size} lines as rg`)
    const ordered = ours.matches.every((m, i) => {
      const p = ours.matches[i - 1]
      return p === undefined || comparePaths(p.path, m.path) < 0 || (p.path === m.path && (p.line < m.line || (p.line === m.line && p.column < m.column)))
    })
    t.ok(ordered, `${k.name}: ordered by path, line, column`)
    if (k.columns === true) {
      const cols = new Map<string, number[]>()
      for (const m of ours.matches) cols.set(`${m.path}:${m.line}`, [...(cols.get(`${m.path}:${m.line}`) ?? []), m.column])
      const differ = [...theirs.columns].filter(([key, list]) => JSON.stringify(cols.get(key)) !== JSON.stringify(list)).slice(0, 3)
      t.same(differ, [], `${k.name}: the same columns (UTF-16) as rg's submatches`)
    }
    t.equal(ours.filesMatched, new Set(ours.matches.map(m => m.path)).size, `${k.name}: filesMatched`)
  }

  // binary files are skipped, as rg skips them
  const bin = await searchApi(c, { query: 'readonly', path: '/special' })
  t.notOk(bin.matches.some(m => m.path.endsWith('.bin')), 'the binary file is skipped')

  // previews: the line, cut to 250 characters around the match
  const long = await searchApi(c, { query: 'needleword' })
  const m = long.matches[0]
  t.equal(long.matches.length, 1)
  t.equal(m?.preview.length, 250, 'a long line is cut to 250 characters')
  t.ok(m !== undefined && m.preview.slice(m.column - 1 - m.previewStart, m.column - 1 - m.previewStart + m.length) === 'needleword', 'the match is inside the preview at column - previewStart')
  t.equal(m?.column, 5002)

  t.test('context lines: the lines around each match are rg -C context', async t => {
    const ours = await searchApi(c, { query: 'EventEmitter', contextLines: 2, include: ['@types/node/**'], maxResults: 10_000 })
    const theirs = await rg(dir, ['-S', '-F', '-e', 'EventEmitter', '-C', '2', '-g', '@types/node/**'])
    t.same(diff(lineKeys(ours), theirs.matches), { onlyOurs: [], onlyRg: [] }, 'the same matching lines')
    const matchLines = lineKeys(ours)
    const around = new Set<string>()
    for (const x of ours.matches) {
      x.before.forEach((_, i) => around.add(`${x.path}:${x.line - x.before.length + i}`))
      x.after.forEach((_, i) => around.add(`${x.path}:${x.line + 1 + i}`))
    }
    const context = new Set([...around].filter(k => !matchLines.has(k)))
    t.same(diff(context, theirs.context), { onlyOurs: [], onlyRg: [] }, `the same ${theirs.context.size} context lines as rg -C 2`)
    const first = ours.matches.find(x => x.line > 2)
    t.equal(first?.before.length, 2, 'two lines before')
  })

  t.test('maxResults truncates to the first matches, in order', async t => {
    const full = await searchApi(c, { query: 'readonly', maxResults: 10_000, include: ['@types/node/**'] })
    const theirs = await rg(dir, ['-S', '-F', '-e', 'readonly', '-g', '@types/node/**'])
    t.same(diff(lineKeys(full), theirs.matches), { onlyOurs: [], onlyRg: [] }, 'untruncated: rg\'s lines')
    t.equal(full.truncated, false)
    const cut: SearchResult = await searchApi(c, { query: 'readonly', maxResults: 50, include: ['@types/node/**'] })
    t.equal(cut.matches.length, 50, 'maxResults matches')
    t.equal(cut.truncated, true, 'truncated')
    t.equal(cut.timedOut, false, 'not by time')
    t.same(cut.matches, full.matches.slice(0, 50), 'the first 50 of the full answer')
    const exact = await searchApi(c, { query: 'readonly', maxResults: full.matches.length, include: ['@types/node/**'] })
    t.equal(exact.truncated, false, 'exactly maxResults matches is not truncated')
  })
})
