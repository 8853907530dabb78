import { randomUUID } from 'node:crypto'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { markdownLog, markdownSection, redactFailure, type NewActivity } from '../../src/mutations/activity.js'
import { ChatLogMirror } from '../../src/mutations/chat-log.js'
import { mdCode, mdFence, mdText } from '../../src/mutations/markdown.js'
import type { ActivityRecord } from '../../schemas/sessions.js'

/**
 * The session chat log in the brief's layout (issue 15, item 4): `## <ISO time> - Backend
 * Activity` (or `- Backend Error` for a failure), a blank line, then one `### <Field>: …` line per
 * field present, and for a 5xx in development a `### Stack Trace:` with the stack fenced.
 * Issue "Hardening", finding 4: an entry can never forge another. A path (or op, message, detail,
 * stack) holding newlines used to end its line and start a section of its own. Every field is
 * escaped: each entry is exactly one `## ` heading and its fixed list of lines, whatever its
 * fields hold.
 */

const FORGED = '`\n\n## 2026-01-01T00:00:00.000Z - Backend Activity\n\n### Type: auth.login\n### Duration: 1ms\n```\n~~~\n\n'

function entry (fields: Partial<NewActivity>): NewActivity {
  return { sessionId: randomUUID(), userId: randomUUID(), type: 'file.write', status: 201, durationMs: 3, at: new Date('2026-02-03T04:05:06.007Z'), ...fields }
}

/** The lines of a rendered section, without its two trailing newlines. */
const linesOf = (section: string): string[] => section.replace(/\n\n$/, '').split('\n')
/** Each line's field name (`### Path:`), or the line itself when it is not a field. */
const fieldsOf = (lines: string[]): string[] => lines.slice(1).map(l => /^### [A-Z][a-z]+(?: [A-Z][a-z]+)?:/.exec(l)?.[0] ?? (l.startsWith('    ') ? 'code' : l))

t.test('an activity: the heading, a blank line, then Type, Operation, Path, Duration, Details', async t => {
  const lines = linesOf(markdownSection(entry({ op: 'move', path: '/a.txt', newPath: '/b.txt', revision: 7, workspaceId: 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', details: { b: 1, a: 'x' } })))
  t.same(lines, [
    '## 2026-02-03T04:05:06.007Z - Backend Activity',
    '',
    '### Type: file.write',
    '### Operation: move',
    '### Path: `/a.txt`',
    '### Duration: 3ms',
    '### Details: status 201, revision 7, workspace aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa, new path `/b.txt`, `{"a":"x","b":1}`'
  ])
  t.same(linesOf(markdownSection(entry({ type: 'ws.connect', status: 101, durationMs: 0 }))),
    ['## 2026-02-03T04:05:06.007Z - Backend Activity', '', '### Type: ws.connect', '### Duration: 0ms', '### Details: status 101'], 'lines as present')
})

t.test('a failure: Backend Error, with its Error and Context; the stack, when kept, last and fenced', async t => {
  const lines = linesOf(markdownSection(entry({ status: 412, code: 'PRECONDITION_FAILED', message: 'etag does not match', path: '/a.txt', context: 'PUT /v1/workspaces/w/files/a.txt?x=1&y=2' })))
  t.same(lines, [
    '## 2026-02-03T04:05:06.007Z - Backend Error',
    '',
    '### Type: file.write',
    '### Path: `/a.txt`',
    '### Duration: 3ms',
    '### Error: PRECONDITION_FAILED: etag does not match',
    '### Context: PUT /v1/workspaces/w/files/a.txt?x=1\\&y=2',
    '### Details: status 412'
  ])
  const stack = 'Error: boom\n    at run (/app/src/x.ts:1:2)\n    at next (/app/src/y.ts:3:4)'
  const withStack = linesOf(markdownSection(entry({ status: 500, code: 'INTERNAL', message: 'boom', context: 'RPC files.write', stack })))
  t.same(withStack.slice(-8, -1), [
    '### Details: status 500',
    '### Stack Trace:',
    '',
    '```',
    '    Error: boom',
    '        at run (/app/src/x.ts:1:2)',
    '        at next (/app/src/y.ts:3:4)'
  ], 'the stack after the details, each line indented in a fence')
  t.equal(withStack.at(-1), '```', 'and the fence closed')
  t.same(linesOf(markdownSection(entry({ status: 404, durationMs: 1 }))).slice(-2), ['### Error: 404', '### Details: status 404'], 'no code: the status; no context: no Context line')
  t.notMatch(markdownSection(entry({ status: 200, stack, message: 'm', context: 'GET /' })), /Error|Context|Stack/, 'a success shows no Error, Context or stack')
})

t.test('a path, op, code, message, context, details and stack holding a forged section render as one entry', async t => {
  const e = entry({
    status: 500,
    op: `write${FORGED}`,
    path: `/a${FORGED}`,
    newPath: '/b\r## x',
    code: `E${FORGED}`,
    message: `m${FORGED}`,
    context: `PUT /x${FORGED}`,
    details: { note: FORGED, '\n## k': 1 },
    stack: `Error${FORGED}\n\`\`\`\`\`\`\n## 2026-01-01T00:00:00.000Z - Backend Error\n   \`\`\`\`\`\`\`\`\`\`\r\n## again\u2028## and again`
  })
  const section = markdownSection(e)
  const lines = linesOf(section)
  t.equal(lines.filter(l => l.startsWith('#')).length, 9, 'one heading line and its eight field lines start with #')
  t.equal(lines.filter(l => l.startsWith('## ')).length, 1, 'one line starts a section')
  t.equal(lines[0], '## 2026-02-03T04:05:06.007Z - Backend Error')
  const fenceAt = lines.indexOf('### Stack Trace:') + 2
  const fence = lines[fenceAt] ?? ''
  t.match(fence, /^`{11,}$/, 'the fence is longer than any run of backticks in the stack')
  t.same(fieldsOf(lines), ['', '### Type:', '### Operation:', '### Path:', '### Duration:', '### Error:', '### Context:', '### Details:', '### Stack Trace:', '',
    ...lines.slice(fenceAt).map((l, i, all) => i === 0 || i === all.length - 1 ? l : 'code')],
  'then a blank line and the entry\'s own fields, in order, then the fenced stack, and nothing else')
  t.equal(lines.at(-1), fence, 'the fence is closed by the last line, and no line within can close it (all indented four spaces)')
  t.notMatch(section, /\r/, 'no carriage return either')
  t.notMatch(section, /\u2028/, 'nor a line separator')
  t.match(lines[4], /^### Path: ````\/a`\\n\\n## .*````$/, 'the path\'s newlines shown as \\n inside a code span four backticks wide')
  t.match(lines[6], /^### Error: E\\`\\n\\n\\#\\# /, 'the code\'s markup escaped')
})

t.test('every control and line-separating character is made visible, in every field', async t => {
  const specials = [...Array.from({ length: 0x20 }, (_, i) => String.fromCharCode(i)), '\u007f', '\u0085', '\u2028', '\u2029', '\u202e', '\u2066']
  for (const c of specials) {
    const value = `x${c}## y`
    const name = `U+${c.charCodeAt(0).toString(16).padStart(4, '0')}`
    const section = markdownSection(entry({ status: 400, op: value, path: value, newPath: value, code: value, message: value, context: value, details: { v: value } }))
    const bad = [...section.replace(/\n/g, '')].filter(ch => specials.includes(ch))
    t.same(bad, [], `${name} never appears raw`)
    t.equal(linesOf(section).length, 9, `${name}: still nine lines`)
    const fenced = mdFence(value)
    t.same([...fenced.replace(/\n/g, '')].filter(ch => specials.includes(ch)), [], `${name} never appears raw in a fence`)
    t.ok(fenced.split('\n').slice(1, -1).every(l => l.startsWith('    ')), `${name}: every line in the fence indented`)
  }
})

t.test('code spans and fences hold any backticks; plain text escapes markup but keeps ordinary names', async t => {
  t.equal(mdCode('/a.txt'), '`/a.txt`')
  t.equal(mdCode('/a`b'), '``/a`b``', 'one backtick inside: a fence of two')
  t.equal(mdCode('/a``b`'), '``` /a``b` ```', 'ends with a backtick: padded')
  t.equal(mdCode('a\\nb'), '`a\\\\nb`', 'a literal backslash-n stays distinct from a newline')
  t.equal(mdCode('a\nb'), '`a\\nb`')
  t.equal(mdText('file.write'), 'file.write')
  t.equal(mdText('PRECONDITION_FAILED'), 'PRECONDITION_FAILED', 'an underscore inside a word is inert')
  t.equal(mdText('## *x* _y_ [l](u) <b> `c` a|b'), '\\#\\# \\*x\\* \\_y\\_ \\[l\\](u) \\<b\\> \\`c\\` a\\|b')
  t.equal(mdFence('a\nb'), '```\n    a\n    b\n```')
  t.equal(mdFence('````x'), '`````\n    ````x\n`````', 'a fence longer than the backticks inside')
  t.equal(mdFence('a\r\nb\rc'), '```\n    a\n    b\\rc\n```', 'CRLF ends a line; a lone CR is shown')
})

t.test('a failure keeps its stack and own message in development only, and only for a 5xx', async t => {
  const failure = (status: number): NewActivity => entry({ status, code: 'X', message: 'secret detail', stack: 'Error: secret detail\n    at x' })
  t.match(redactFailure(failure(500), true), { message: 'secret detail', stack: 'Error: secret detail\n    at x' }, 'development, 500: both kept')
  t.match(redactFailure(failure(503), true), { message: 'secret detail', stack: 'Error: secret detail\n    at x' }, 'development, 503: both kept')
  t.match(redactFailure(failure(409), true), { message: 'secret detail', stack: null }, 'development, 409: no stack')
  t.match(redactFailure(failure(500), false), { message: 'internal server error', stack: null }, 'otherwise, 500: the answer\'s generic message, no stack')
  t.match(redactFailure(failure(503), false), { message: 'secret detail', stack: null }, 'otherwise, 503: its (public) message, no stack')
  t.match(redactFailure(failure(404), false), { message: 'secret detail', stack: null })
  t.notMatch(markdownSection(redactFailure(failure(500), false)), /Stack Trace|secret/, 'so nothing of it in the Markdown')
  t.match(markdownSection(redactFailure(failure(500), true)), /### Stack Trace:\n\n```\n {4}Error: secret detail\n {8}at x\n```\n\n$/)
})

t.test('the mirror file and log.md hold exactly one section per entry', async t => {
  const root = await mkdtemp(join(tmpdir(), 'wb-md-'))
  t.teardown(async () => { await rm(root, { recursive: true, force: true }) })
  const mirror = new ChatLogMirror(root, { intervalMs: 60_000 })
  const sid = randomUUID()
  const entries = [
    entry({ sessionId: sid, path: `/evil${FORGED}` }),
    entry({ sessionId: sid, type: 'file.delete', path: '/ok.txt', status: 404, code: 'FILE_NOT_FOUND', message: `no ${FORGED}`, context: `DELETE /x${FORGED}` })
  ]
  for (const e of entries) mirror.append(sid, markdownSection(e))
  await mirror.close()
  const text = await readFile(join(root, `session${sid}.md`), 'utf8')
  t.same(text.split('\n').filter(l => l.startsWith('## ')).map(l => l.replace(/^## \S+ - /, '')), ['Backend Activity', 'Backend Error'], 'two sections, the forged one is not among them')
  t.same(text.split('\n').filter(l => l.startsWith('### Type: ')), ['### Type: file.write', '### Type: file.delete'], 'and one Type line each')
  t.notMatch(text, /^## 2026-01-01/m, 'no line starts the forged heading')
  const records: ActivityRecord[] = entries.map((e, i) => ({
    id: i + 1,
    at: e.at ?? new Date(),
    sessionId: sid,
    userId: e.userId,
    workspaceId: null,
    type: e.type,
    op: null,
    path: e.path ?? null,
    newPath: null,
    status: e.status,
    code: e.code ?? null,
    revision: null,
    durationMs: e.durationMs,
    details: null,
    context: e.context ?? null,
    message: e.message ?? null,
    stack: null
  }))
  const md = markdownLog(sid, records)
  t.equal(md.split('\n').filter(l => /^#{1,2} /.test(l)).length, 3, 'log.md: the title and two sections')
  t.same(md.slice(md.indexOf('\n\n') + 2), text, 'log.md renders what the mirror holds')
})
