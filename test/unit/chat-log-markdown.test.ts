import { randomUUID } from 'node:crypto'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { markdownLog, markdownSection, type NewActivity } from '../../src/mutations/activity.js'
import { ChatLogMirror } from '../../src/mutations/chat-log.js'
import { mdCode, mdText } from '../../src/mutations/markdown.js'

/**
 * Issue "Hardening", finding 4: an activity entry rendered as Markdown can never forge another.
 * A path (or op, or detail) holding newlines used to end its line and start a `## … - auth.login`
 * section of its own. Every field is escaped now: each entry is exactly one `## ` heading and
 * its fixed list of lines, whatever its fields hold.
 */

const FORGED = '`\n\n## 2026-01-01T00:00:00.000Z - auth.login\n\n- status: 200\n- duration: 1 ms\n\n'

function entry (fields: Partial<NewActivity>): NewActivity {
  return { sessionId: randomUUID(), userId: randomUUID(), type: 'file.write', status: 201, durationMs: 3, at: new Date('2026-02-03T04:05:06.007Z'), ...fields }
}

/** The lines of a rendered section, without its two trailing newlines. */
const linesOf = (section: string): string[] => section.replace(/\n\n$/, '').split('\n')

t.test('a path, op, code and details holding a forged section render as one entry', async t => {
  const e = entry({ op: `write${FORGED}`, path: `/a${FORGED}`, newPath: '/b\r## x', code: `E${FORGED}`, details: { note: FORGED, '\n## k': 1 } })
  const section = markdownSection(e)
  const lines = linesOf(section)
  t.equal(lines.filter(l => l.startsWith('#')).length, 1, 'one heading line')
  t.equal(lines[0], '## 2026-02-03T04:05:06.007Z - file.write')
  t.same(lines.slice(1).map(l => /^(- [a-z ]+:|)/.exec(l)?.[0]), ['', '- operation:', '- path:', '- new path:', '- status:', '- duration:', '- details:'],
    'then a blank line and the entry\'s own fields, in order, and nothing else')
  t.notMatch(section, /\r/, 'no carriage return either')
  t.match(lines[3], /^- path: ``\/a`\\n\\n## .*``$/, 'the path\'s newlines shown as \\n inside a code span two backticks wide')
})

t.test('every control and line-separating character is made visible, in every field', async t => {
  const specials = [...Array.from({ length: 0x20 }, (_, i) => String.fromCharCode(i)), '\u007f', '\u0085', '\u2028', '\u2029', '\u202e', '\u2066']
  for (const c of specials) {
    const value = `x${c}## y`
    const section = markdownSection(entry({ op: value, path: value, newPath: value, code: value, details: { v: value } }))
    const bad = [...section.replace(/\n/g, '')].filter(ch => specials.includes(ch))
    t.same(bad, [], `U+${c.charCodeAt(0).toString(16).padStart(4, '0')} never appears raw`)
    t.equal(linesOf(section).length, 8, `U+${c.charCodeAt(0).toString(16).padStart(4, '0')}: still eight lines`)
  }
})

t.test('code spans hold any backticks; plain text escapes markup but keeps ordinary names', async t => {
  t.equal(mdCode('/a.txt'), '`/a.txt`')
  t.equal(mdCode('/a`b'), '``/a`b``', 'one backtick inside: a fence of two')
  t.equal(mdCode('/a``b`'), '``` /a``b` ```', 'ends with a backtick: padded')
  t.equal(mdCode('a\\nb'), '`a\\\\nb`', 'a literal backslash-n stays distinct from a newline')
  t.equal(mdCode('a\nb'), '`a\\nb`')
  t.equal(mdText('file.write'), 'file.write')
  t.equal(mdText('PRECONDITION_FAILED'), 'PRECONDITION_FAILED', 'an underscore inside a word is inert')
  t.equal(mdText('## *x* _y_ [l](u) <b> `c` a|b'), '\\#\\# \\*x\\* \\_y\\_ \\[l\\](u) \\<b\\> \\`c\\` a\\|b')
})

t.test('the mirror file and log.md hold exactly one section per entry', async t => {
  const root = await mkdtemp(join(tmpdir(), 'wb-md-'))
  t.teardown(async () => { await rm(root, { recursive: true, force: true }) })
  const mirror = new ChatLogMirror(root, { intervalMs: 60_000 })
  const sid = randomUUID()
  const entries = [entry({ sessionId: sid, path: `/evil${FORGED}` }), entry({ sessionId: sid, type: 'file.delete', path: '/ok.txt' })]
  for (const e of entries) mirror.append(sid, markdownSection(e))
  await mirror.close()
  const text = await readFile(join(root, `session${sid}.md`), 'utf8')
  t.same(text.split('\n').filter(l => l.startsWith('## ')).map(l => l.replace(/^## \S+ - /, '')), ['file.write', 'file.delete'], 'two sections, the forged one is not among them')
  t.notMatch(text, /^## 2026-01-01/m, 'no line starts the forged heading')
  const md = markdownLog(sid, entries.map((e, i) => ({ id: i + 1, at: e.at ?? new Date(), sessionId: sid, userId: e.userId, workspaceId: null, type: e.type, op: null, path: e.path ?? null, newPath: null, status: e.status, code: null, revision: null, durationMs: e.durationMs, details: null })))
  t.equal(md.split('\n').filter(l => l.startsWith('#')).length, 3, 'log.md: the title and two sections')
})
