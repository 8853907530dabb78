import fc from 'fast-check'
import t from 'tap'
import { capText, countLines } from '../../src/mcp/format.js'
import { agentPath } from '../../src/mcp/paths.js'

/** The pure parts of the MCP server: paths as agents write them, and the result cap. */

t.test('agentPath: the forms agents write name workspace paths; above the root is INVALID_PATH', async t => {
  const cases: Array<[string, string]> = [
    ['/src/a.ts', '/src/a.ts'], ['src/a.ts', '/src/a.ts'], ['./src/a.ts', '/src/a.ts'], ['src//a.ts', '/src/a.ts'],
    ['src/a.ts/', '/src/a.ts'], ['src/x/../a.ts', '/src/a.ts'], ['', '/'], ['.', '/'], ['./', '/'], ['/', '/'], ['//', '/'],
    ['a/..', '/'], ['cafe\u0301', '/caf\u00e9']
  ]
  for (const [input, want] of cases) t.equal(agentPath(input), want, JSON.stringify(input))
  for (const input of ['..', '../a', '/..', 'a/../..', './../a']) {
    t.throws(() => agentPath(input), { code: 'INVALID_PATH' }, JSON.stringify(input))
  }
  for (const input of ['a\\b', 'a\u0000b', 'x'.repeat(256)]) {
    t.throws(() => agentPath(input), { code: 'INVALID_PATH' }, `the contract's rules: ${JSON.stringify(input.slice(0, 20))}`)
  }
})

t.test('capText: never over the cap, a prefix of the text on a character boundary, whole lines when it can', async t => {
  fc.assert(fc.property(
    fc.array(fc.string({ unit: 'grapheme', maxLength: 200 }), { maxLength: 400 }),
    fc.integer({ min: 4096, max: 20_000 }),
    fc.string({ maxLength: 1100 }),
    (lines, max, path) => {
      const text = lines.join('\n')
      const r = capText(text, max, (shown, bytes) => `Read the rest with read_lines {"path": ${JSON.stringify(path)}, "lines": "${shown + 1}-"} (${bytes}).`)
      if (Buffer.byteLength(text) <= max) return r.text === text && !r.truncated
      const cut = r.text.lastIndexOf('\n\n[truncated: ')
      const shown = r.text.slice(0, cut)
      return r.truncated && Buffer.byteLength(r.text) <= max && text.startsWith(shown) && !shown.endsWith('\ud800')
    }
  ), { numRuns: 300 })
  t.pass('held for every case')
  t.equal(countLines(''), 0)
  t.equal(countLines('a\nb'), 2)
  t.equal(countLines('a\nb\n'), 2)
})
