import t, { type Test } from 'tap'
import fc from 'fast-check'
import { applyPatch, parsePatch } from 'diff'
import { applyEdits, closestLines, lineEndingOf, unifiedDiff, type TextEdit } from '../../src/files/edit.js'
import { parseLineSpec, sliceLines } from '../../src/files/lines.js'
import { AppError } from '../../src/core/errors.js'

/** src/files/edit.ts and src/files/lines.ts: the text logic of edits and ranged reads. */

function refused (t: Test, fn: () => unknown, code: string, details?: Record<string, unknown>): void {
  try {
    const result = fn()
    t.fail(`expected ${code}, got ${JSON.stringify(result)}`)
  } catch (err) {
    t.ok(err instanceof AppError, 'an AppError')
    if (!(err instanceof AppError)) return
    t.equal(err.code, code)
    if (details !== undefined) t.same(err.details, details)
  }
}

const apply = (text: string, ...edits: TextEdit[]): string => applyEdits('/f', text, edits)

t.test('applyEdits: one exact occurrence each, in order', async t => {
  t.equal(apply('a b c', { oldText: 'b', newText: 'B' }), 'a B c')
  t.equal(apply('a b c', { oldText: 'b', newText: 'x' }, { oldText: 'x c', newText: 'y' }), 'a y', 'a later edit matches an earlier result')
  t.equal(apply('abc', { oldText: 'abc', newText: '' }), '', 'to empty')
  refused(t, () => apply('a b c', { oldText: 'b', newText: 'x' }, { oldText: 'b', newText: 'y' }), 'EDIT_NO_MATCH', { editIndex: 1, closest: [] })
  refused(t, () => apply('ab ab', { oldText: 'ab', newText: 'x' }), 'EDIT_AMBIGUOUS', { editIndex: 0, count: 2, lines: [1] })
  refused(t, () => apply('x\ny\nx\n', { oldText: 'x', newText: 'z' }), 'EDIT_AMBIGUOUS', { editIndex: 0, count: 2, lines: [1, 3] })
  refused(t, () => apply('aaaa', { oldText: 'aaa', newText: 'b' }), 'EDIT_AMBIGUOUS', { editIndex: 0, count: 2, lines: [1] })
  t.equal(apply('aaaa', { oldText: 'aa', newText: 'b', replaceAll: true }), 'bb', 'replaceAll: non-overlapping, left to right')
  t.equal(apply('x.x.x', { oldText: 'x', newText: 'yx', replaceAll: true }), 'yx.yx.yx', 'replacements are not matched again')
  refused(t, () => apply('abc', { oldText: 'z', newText: 'y', replaceAll: true }), 'EDIT_NO_MATCH')
  t.equal(apply('$1 $& $$', { oldText: '$&', newText: '$1$$' }), '$1 $1$$ $$', 'no replacement patterns')
})

t.test('applyEdits: the ambiguous lines are listed once each, at most 100', async t => {
  const text = 'x\n'.repeat(150)
  try {
    apply(text, { oldText: 'x', newText: 'y' })
    t.fail('expected EDIT_AMBIGUOUS')
  } catch (err) {
    const details = (err as AppError).details as { count: number, lines: number[] }
    t.equal(details.count, 150)
    t.same(details.lines, Array.from({ length: 100 }, (_, i) => i + 1))
    t.match((err as AppError).message, /occurs 150 times in \/f \(lines 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, …\)/)
  }
})

t.test('applyEdits: empty oldText only on an empty text', async t => {
  t.equal(apply('', { oldText: '', newText: 'new' }), 'new')
  t.equal(apply('', { oldText: '', newText: 'a\r\nb' }), 'a\nb', 'an empty text has the LF style')
  t.equal(apply('x', { oldText: 'x', newText: '' }, { oldText: '', newText: 'y' }), 'y', 'emptied by an earlier edit')
  refused(t, () => apply('x', { oldText: '', newText: 'y' }), 'VALIDATION_FAILED')
})

t.test('applyEdits: line endings', async t => {
  t.equal(lineEndingOf('a\r\nb\r\n'), '\r\n')
  t.equal(lineEndingOf('a\nb\n'), '\n')
  t.equal(lineEndingOf('a\r\nb\nc\r\n'), '\r\n', 'more CRLF')
  t.equal(lineEndingOf('a\r\nb\nc\n'), '\n', 'more LF')
  t.equal(lineEndingOf('a\r\nb\n'), '\n', 'a tie is LF')
  t.equal(lineEndingOf('no break'), '\n')
  t.equal(lineEndingOf('\r\r'), '\n', 'lone CRs are not line breaks')

  t.equal(apply('a\r\nb\r\nc\r\n', { oldText: 'a\nb', newText: 'x\ny' }), 'x\r\ny\r\nc\r\n', 'LF oldText in a CRLF file; newText as CRLF')
  t.equal(apply('a\r\nb\r\nc\r\n', { oldText: 'a\r\nb', newText: 'x\r\ny' }), 'x\r\ny\r\nc\r\n', 'CRLF in both')
  t.equal(apply('a\nb\nc\n', { oldText: 'a\r\nb', newText: 'x\r\ny' }), 'x\ny\nc\n', 'CRLF oldText in an LF file; newText as LF')
  t.equal(apply('a\r\nb\r\n', { oldText: 'b\n', newText: 'c\n' }), 'a\r\nc\r\n', 'a match ending in a line break takes the whole CRLF')
  t.equal(apply('a\r\nb\r\n', { oldText: 'a', newText: 'z' }), 'z\r\nb\r\n', 'a match ending before a CRLF leaves it whole')
  t.equal(apply('a\r\nb\r\n', { oldText: '\nb', newText: '\nc' }), 'a\r\nc\r\n', 'a match starting at a CRLF takes its CR')
  t.equal(apply('1\r\n2\n3\r\n4\r\n', { oldText: '2\n3', newText: 'two\nthree' }), '1\r\ntwo\r\nthree\r\n4\r\n', 'mixed: the majority style for the new text')
  t.equal(apply('1\r\n2\n3\r\n4\n5\n', { oldText: '4', newText: 'four' }), '1\r\n2\n3\r\nfour\n5\n', 'bytes outside the match are kept')
  t.equal(apply('a\r\nb\r\nc\r\nb\r\n', { oldText: 'b\n', newText: 'B\n', replaceAll: true }), 'a\r\nB\r\nc\r\nB\r\n', 'replaceAll across CRLF')
  refused(t, () => apply('a\r\nb', { oldText: 'a\r', newText: 'x' }), 'EDIT_NO_MATCH', undefined)
})

t.test('applyEdits: Unicode is matched as written', async t => {
  t.equal(apply('😀 ok', { oldText: '😀', newText: '🎉' }), '🎉 ok')
  t.equal(apply('e\u0301 é', { oldText: 'é', newText: 'E' }), 'e\u0301 E', 'NFC matches only NFC')
  t.equal(apply('e\u0301 é', { oldText: 'e\u0301', newText: 'E' }), 'E é', 'NFD matches only NFD')
  t.equal(apply('👩‍👩‍👧', { oldText: '👩', newText: 'w', replaceAll: true }), 'w‍w‍👧', 'a ZWJ sequence is code points')
})

t.test('closestLines: the lines most like the first non-blank line of oldText', async t => {
  const text = 'function a() {\n  return 1\n}\n\nfunction b() {\n    return 2\n}\n'
  t.same(closestLines(text, '\n  return 2 \n}'), [{ line: 6, text: '    return 2' }, { line: 2, text: '  return 1' }], 'trimmed equal ranks first')
  t.same(closestLines(text, 'zzzz'), [])
  t.same(closestLines(text, '\n \n'), [], 'no non-blank line')
  t.same(closestLines('one\r\ntwo\r\n', 'tw0'), [{ line: 2, text: 'two' }], 'without the CR')
  t.same(closestLines('x'.repeat(300), 'x'.repeat(200)).map(c => c.text.length), [201], 'cut at 200 characters')
  t.equal(closestLines('ab\n'.repeat(10), 'ab').length, 3, 'at most 3')
})

t.test('unifiedDiff: git-style, 3 lines of context', async t => {
  t.equal(unifiedDiff('/a', 'x\n', 'x\n'), '', 'nothing changed')
  const lines = (n: number): string => Array.from({ length: n }, (_, i) => `l${i + 1}\n`).join('')
  t.equal(unifiedDiff('/dir/a.txt', lines(20), lines(20).replace('l10\n', 'ten\n')), [
    'diff --git a/dir/a.txt b/dir/a.txt', '--- a/dir/a.txt', '+++ b/dir/a.txt', '@@ -7,7 +7,7 @@',
    ' l7', ' l8', ' l9', '-l10', '+ten', ' l11', ' l12', ' l13', ''
  ].join('\n'))
  t.equal(unifiedDiff('/a', lines(20), lines(20).replace('l2\n', 'two\n').replace('l19\n', 'nineteen\n')), [
    'diff --git a/a b/a', '--- a/a', '+++ b/a',
    '@@ -1,5 +1,5 @@', ' l1', '-l2', '+two', ' l3', ' l4', ' l5',
    '@@ -16,5 +16,5 @@', ' l16', ' l17', ' l18', '-l19', '+nineteen', ' l20', ''
  ].join('\n'), 'two hunks')
  t.equal(unifiedDiff('/a', 'a\nb', 'a\nc'), 'diff --git a/a b/a\n--- a/a\n+++ b/a\n@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+c\n\\ No newline at end of file\n')
  t.equal(unifiedDiff('/a', 'a\n', 'a'), 'diff --git a/a b/a\n--- a/a\n+++ b/a\n@@ -1,1 +1,1 @@\n-a\n+a\n\\ No newline at end of file\n', 'the final newline removed')
  t.equal(unifiedDiff('/a', '', 'x\n'), 'diff --git a/a b/a\n--- a/a\n+++ b/a\n@@ -0,0 +1,1 @@\n+x\n')
  t.equal(unifiedDiff('/a', 'x\n', ''), 'diff --git a/a b/a\n--- a/a\n+++ b/a\n@@ -1,1 +0,0 @@\n-x\n')
  t.equal(unifiedDiff('/a', 'x\r\ny\r\n', 'x\r\nz\r\n'), 'diff --git a/a b/a\n--- a/a\n+++ b/a\n@@ -1,2 +1,2 @@\n x\r\n-y\r\n+z\r\n', 'CRs kept')
  t.equal(unifiedDiff('/a', 'x\nfoo', 'xyfoo'), 'diff --git a/a b/a\n--- a/a\n+++ b/a\n@@ -1,2 +1,1 @@\n-x\n-foo\n\\ No newline at end of file\n+xyfoo\n\\ No newline at end of file\n', 'a common tail inside a line is not a common line')
  t.equal(unifiedDiff('/a', '\n\n\n\nb\n', '\n\n\n\nc\n'), 'diff --git a/a b/a\n--- a/a\n+++ b/a\n@@ -2,4 +2,4 @@\n \n \n \n-b\n+c\n', 'blank context lines')
  t.same(parsePatch(unifiedDiff('/a b.txt', 'x\n', 'y\n'))[0]?.hunks.length, 1, 'parses back')
})

t.test('unifiedDiff: the patch applies and gives the new text (property)', async t => {
  const line = fc.oneof(
    fc.constantFrom('', 'a', 'b', 'x y', '  indented', '😀', 'cafe\u0301'),
    fc.string({ maxLength: 6 }).map(s => s.replace(/[\r\n]/g, ''))
  )
  const text = fc.tuple(fc.array(line, { maxLength: 30 }), fc.constantFrom('\n', '\r\n'), fc.boolean())
    .map(([ls, eol, final]) => ls.join(eol) + (final && ls.length > 0 ? eol : ''))
  fc.assert(fc.property(text, text, (before, after) => {
    const diff = unifiedDiff('/f.txt', before, after)
    if (before === after) return diff === ''
    return applyPatch(before, diff) === after
  }), { numRuns: 500 })
  t.pass('500 random pairs')
})

t.test('unifiedDiff: small edits of a large text, and a diff too costly to minimise', async t => {
  const big = Array.from({ length: 200_000 }, (_, i) => `line ${i}\n`).join('')
  const edited = big.replace('line 100000\n', 'changed\n')
  const started = performance.now()
  const diff = unifiedDiff('/big', big, edited)
  t.ok(performance.now() - started < 2_000, `fast (${Math.round(performance.now() - started)} ms)`)
  t.match(diff, /@@ -99998,7 \+99998,7 @@\n line 99997\n line 99998\n line 99999\n-line 100000\n\+changed\n line 100001\n/)
  const everyOther = big.replace(/line (\d*[02468])\n/g, 'LINE $1\n')
  const costly = unifiedDiff('/big', big, everyOther)
  t.equal(applyPatch(big, costly), everyOther, 'still a correct patch')
})

t.test('parseLineSpec and sliceLines', async t => {
  t.same(parseLineSpec('2-4'), { from: 2, to: 4 })
  t.same(parseLineSpec('2-'), { from: 2, to: null })
  t.same(parseLineSpec('-3'), { last: 3 })
  for (const bad of ['0-1', '0-', '-0', '3-2', '', '5', 'a-b', '1-2-3', ' 1-2', '1-2\n', '1234567890123456-']) {
    refused(t, () => parseLineSpec(bad), 'VALIDATION_FAILED')
  }
  const text = 'a\nb\r\nc\n\nlast'
  t.same(sliceLines(text, { from: 1, to: null }), { content: text, start: 1, end: 5, totalLines: 5 })
  t.same(sliceLines(text, { from: 2, to: 3 }), { content: 'b\r\nc\n', start: 2, end: 3, totalLines: 5 })
  t.same(sliceLines(text, { from: 4, to: 4 }), { content: '\n', start: 4, end: 4, totalLines: 5 })
  t.same(sliceLines(text, { last: 1 }), { content: 'last', start: 5, end: 5, totalLines: 5 })
  t.same(sliceLines(text, { last: 9 }), { content: text, start: 1, end: 5, totalLines: 5 })
  t.same(sliceLines(text, { from: 3, to: 99 }), { content: 'c\n\nlast', start: 3, end: 5, totalLines: 5 })
  t.same(sliceLines(text, { from: 6, to: null }), { content: '', start: 6, end: 5, totalLines: 5 })
  t.same(sliceLines('', { from: 1, to: null }), { content: '', start: 1, end: 0, totalLines: 0 })
  t.same(sliceLines('', { last: 2 }), { content: '', start: 1, end: 0, totalLines: 0 })
  t.same(sliceLines('x\n', { from: 1, to: null }), { content: 'x\n', start: 1, end: 1, totalLines: 1 }, 'a final LF starts no line')
  fc.assert(fc.property(fc.string({ maxLength: 40 }).map(s => s.replace(/[^ab\n]/g, '\n')), fc.integer({ min: 1, max: 12 }), (s, cut) => {
    const head = sliceLines(s, { from: 1, to: cut })
    const tail = sliceLines(s, { from: cut + 1, to: null })
    return head.content + tail.content === s && head.totalLines === tail.totalLines
  }), { numRuns: 500 })
})
