import t from 'tap'
import { listen } from '../helpers/app.js'
import { setup } from '../helpers/files.js'
import { connectMcp } from '../helpers/mcp.js'
import { McpArgs } from '../../schemas/mcp.js'

/**
 * Every tool of the MCP endpoint, driven by the SDK's own Client over real HTTP: results, the
 * revision a mutating tool states, errors (tool errors whose text starts with the contract's
 * code), the path forms agents write, and the annotations and schemas of tools/list.
 */

const READ_ONLY = ['read_text_file', 'read_multiple_files', 'read_lines', 'list_directory', 'list_directory_with_sizes', 'directory_tree',
  'search_files', 'grep', 'get_file_info', 'list_allowed_directories', 'list_changes', 'file_history']
const MUTATING = ['write_file', 'edit_file', 'create_directory', 'move_file', 'copy_file', 'delete', 'revert_session', 'apply_batch', 'fork_workspace']

t.test('tools/list: every tool, with annotations, a title, and the TypeBox schema as inputSchema', async t => {
  const ctx = await setup(t)
  const mcp = await connectMcp(t, await listen(ctx.app), ctx.user.token, ctx.ws)
  const { tools } = await mcp.client.listTools()
  t.same(tools.map(x => x.name).sort(), [...READ_ONLY, ...MUTATING].sort(), 'the tools')
  for (const tool of tools) {
    const a = tool.annotations ?? {}
    t.equal(typeof a.readOnlyHint, 'boolean', `${tool.name}: readOnlyHint`)
    t.equal(typeof a.destructiveHint, 'boolean', `${tool.name}: destructiveHint`)
    t.equal(typeof a.idempotentHint, 'boolean', `${tool.name}: idempotentHint`)
    t.equal(a.openWorldHint, false, `${tool.name}: openWorldHint`)
    t.equal(a.readOnlyHint, READ_ONLY.includes(tool.name), `${tool.name}: read-only or not`)
    t.ok(typeof tool.title === 'string' && tool.title !== '', `${tool.name}: title`)
    t.ok((tool.description ?? '').length > 20, `${tool.name}: description`)
    t.same(tool.inputSchema, JSON.parse(JSON.stringify(McpArgs[tool.name as keyof typeof McpArgs])), `${tool.name}: inputSchema is the TypeBox schema`)
    t.equal(tool.outputSchema?.type, 'object', `${tool.name}: outputSchema`)
  }
  const byName = new Map(tools.map(x => [x.name, x.annotations]))
  t.match(byName.get('write_file'), { destructiveHint: true, idempotentHint: true })
  t.match(byName.get('create_directory'), { destructiveHint: false, idempotentHint: true })
  t.match(byName.get('move_file'), { destructiveHint: true, idempotentHint: false })
})

t.test('paths as agents write them: /a, a, ./a, a//b, a/../b name workspace paths; above the root is INVALID_PATH', async t => {
  const ctx = await setup(t)
  const mcp = await connectMcp(t, await listen(ctx.app), ctx.user.token, ctx.ws)
  const w = await mcp.call('write_file', { path: 'src/a.ts', content: 'one\ntwo\n' })
  t.notOk(w.isError, w.text)
  t.equal((await ctx.read('/src/a.ts')).content, 'one\ntwo\n', 'src/a.ts is /src/a.ts')
  for (const path of ['/src/a.ts', 'src/a.ts', './src/a.ts', 'src//a.ts', 'src/x/../a.ts', '/./src/./a.ts', 'src/a.ts/']) {
    const r = await mcp.call('read_text_file', { path })
    t.same([r.isError, r.text], [false, 'one\ntwo\n'], `read ${JSON.stringify(path)}`)
  }
  for (const path of ['', '.', './', '/']) {
    const r = await mcp.call('list_directory', { path })
    t.same([r.isError, r.text], [false, '[DIR] src'], `list ${JSON.stringify(path)} is the root`)
  }
  for (const path of ['..', '../a.ts', '/../etc/passwd', 'src/../../a', './..']) {
    const r = await mcp.call('read_text_file', { path })
    t.ok(r.isError, `${JSON.stringify(path)} is an error`)
    t.match(r.text, /^INVALID_PATH: /, `${JSON.stringify(path)}: INVALID_PATH`)
  }
  const bad = await mcp.call('write_file', { path: 'a\\b', content: '' })
  t.match(bad.text, /^INVALID_PATH: /, 'a backslash is refused as REST refuses it')
})

t.test('reading: read_text_file (head, tail), read_multiple_files, read_lines, get_file_info, list_allowed_directories', async t => {
  const ctx = await setup(t)
  const mcp = await connectMcp(t, await listen(ctx.app), ctx.user.token, ctx.ws)
  await ctx.write('/a.txt', 'l1\nl2\nl3\nl4\n')
  await ctx.write('/b.txt', 'no newline')
  await ctx.mkdir('/dir')
  const read = async (args: Record<string, unknown>) => await mcp.call('read_text_file', args)
  t.equal((await read({ path: 'a.txt' })).text, 'l1\nl2\nl3\nl4\n')
  t.equal((await read({ path: 'a.txt', head: 2 })).text, 'l1\nl2\n', 'whole lines, line ends included (a ranged read)')
  t.equal((await read({ path: 'a.txt', head: 10 })).text, 'l1\nl2\nl3\nl4\n', 'head past the end: every line')
  t.equal((await read({ path: 'a.txt', tail: 2 })).text, 'l3\nl4\n', 'the last 2 lines')
  t.equal((await read({ path: 'b.txt', tail: 1 })).text, 'no newline')
  await ctx.put('/bin.dat', { content: Buffer.from([0xff, 0xfe, 0x00]).toString('base64'), encoding: 'base64' })
  t.match((await read({ path: 'bin.dat' })).text, /^NOT_TEXT: \/bin\.dat is not UTF-8 text/)
  t.match((await read({ path: 'a.txt', head: 1, tail: 1 })).text, /^VALIDATION_FAILED: Cannot specify both head and tail/)
  t.match((await read({ path: 'a.txt', head: 0 })).text, /^VALIDATION_FAILED: invalid arguments for read_text_file: \/head must be >= 1/)
  t.match((await read({ path: 'missing.txt' })).text, /^FILE_NOT_FOUND: no such file or directory: \/missing\.txt/)
  t.match((await read({ path: 'dir' })).text, /^IS_A_DIRECTORY: /)
  t.match((await read({ path: 'a.txt', extra: 1 })).text, /^VALIDATION_FAILED: .*must NOT have additional properties/)

  const many = await mcp.call('read_multiple_files', { paths: ['a.txt', '/missing', './b.txt'] })
  t.notOk(many.isError, 'one failed read does not fail the others')
  t.equal(many.text, 'a.txt:\nl1\nl2\nl3\nl4\n\n\n---\n/missing: Error - FILE_NOT_FOUND: no such file or directory: /missing\n---\n./b.txt:\nno newline\n')
  t.match((await mcp.call('read_multiple_files', { paths: [] })).text, /^VALIDATION_FAILED: /)

  const lines = async (spec: string, path = 'a.txt') => (await mcp.call('read_lines', { path, lines: spec })).text
  t.equal(await lines('2-3'), '[/a.txt: lines 2-3 of 4]\nl2\nl3\n')
  t.equal(await lines('3-'), '[/a.txt: lines 3-4 of 4]\nl3\nl4\n')
  t.equal(await lines('-1'), '[/a.txt: lines 4-4 of 4]\nl4\n')
  t.equal(await lines('2-99'), '[/a.txt: lines 2-4 of 4]\nl2\nl3\nl4\n', 'an end past the file is clamped')
  t.equal(await lines('1-1', 'b.txt'), '[/b.txt: lines 1-1 of 1]\nno newline')
  t.equal(await lines('9-'), '[/a.txt: lines 9-8 of 4]\n', 'past the end: no lines')
  t.match(await lines('3-2'), /^VALIDATION_FAILED: /)
  t.match(await lines('x'), /^VALIDATION_FAILED: /)

  const info = await mcp.call('get_file_info', { path: 'a.txt' })
  const meta = await ctx.read('/a.txt')
  t.match(info.text, new RegExp(`^size: 12\ncreated: ${meta.createdAt}\nmodified: ${meta.updatedAt}\nisDirectory: false\nisFile: true\npath: /a.txt\nmimeType: text/plain\netag: ${meta.etag}\nversion: 1\nsha256: ${meta.sha256 ?? ''}\n`))
  t.match((await mcp.call('get_file_info', { path: 'dir' })).text, /^size: 0\ncreated: .*\nmodified: .*\nisDirectory: true\nisFile: false\n/)
  t.equal((await mcp.call('list_allowed_directories')).text, 'Allowed directories:\n/')
})

t.test('listing: list_directory, list_directory_with_sizes, directory_tree, search_files', async t => {
  const ctx = await setup(t)
  const mcp = await connectMcp(t, await listen(ctx.app), ctx.user.token, ctx.ws)
  await ctx.write('/src/app.ts', 'x'.repeat(2048))
  await ctx.write('/src/lib/util.ts', 'u')
  await ctx.write('/src/lib-old/x.ts', 'x')
  await ctx.write('/node_modules/dep/index.js', 'd')
  await ctx.write('/README.md', 'hello')
  await ctx.write('/.env', 'S=1')
  t.equal((await mcp.call('list_directory', { path: '/' })).text, '[FILE] .env\n[FILE] README.md\n[DIR] node_modules\n[DIR] src')
  t.match((await mcp.call('list_directory', { path: 'README.md' })).text, /^NOT_A_DIRECTORY: /)
  t.match((await mcp.call('list_directory', { path: 'nope' })).text, /^FILE_NOT_FOUND: /)
  const sizes = await mcp.call('list_directory_with_sizes', { path: 'src', sortBy: 'size' })
  t.equal(sizes.text, [
    `[FILE] ${'app.ts'.padEnd(30)} ${'2.00 KB'.padStart(10)}`,
    `[DIR] ${'lib'.padEnd(30)} `,
    `[DIR] ${'lib-old'.padEnd(30)} `,
    '',
    'Total: 1 files, 2 directories',
    'Combined size: 2.00 KB'
  ].join('\n'))

  const tree = JSON.parse((await mcp.call('directory_tree', { path: 'src' })).text) as unknown
  t.same(tree, [
    { name: 'app.ts', type: 'file' },
    { name: 'lib', type: 'directory', children: [{ name: 'util.ts', type: 'file' }] },
    { name: 'lib-old', type: 'directory', children: [{ name: 'x.ts', type: 'file' }] }
  ], 'walk order: a directory, then what is under it')
  const pruned = JSON.parse((await mcp.call('directory_tree', { path: '/', excludePatterns: ['node_modules', '*.md', 'src/lib*'] })).text) as Array<{ name: string }>
  t.same(pruned.map(e => e.name), ['.env', 'src'], 'a bare name excludes at any depth, with what is under it; a glob matches paths')
  t.same((pruned[1] as unknown as { children: Array<{ name: string }> }).children.map(c => c.name), ['app.ts'])

  t.equal((await mcp.call('search_files', { path: '/', pattern: '**/*.ts' })).text, '/src/app.ts\n/src/lib/util.ts\n/src/lib-old/x.ts')
  t.equal((await mcp.call('search_files', { path: '/', pattern: '*.md' })).text, '/README.md', '*.md: this level only')
  t.equal((await mcp.call('search_files', { path: 'src', pattern: '*' })).text, '/src/app.ts\n/src/lib\n/src/lib-old', 'relative to path')
  t.equal((await mcp.call('search_files', { path: '/', pattern: '**/*.ts', excludePatterns: ['src/lib'] })).text, '/src/app.ts\n/src/lib-old/x.ts')
  t.equal((await mcp.call('search_files', { path: '/', pattern: '.*' })).text, '/.env', 'dot files match')
  t.equal((await mcp.call('search_files', { path: '/', pattern: '*.rs' })).text, 'No matches found')
  t.match((await mcp.call('search_files', { path: 'README.md', pattern: '*' })).text, /^NOT_A_DIRECTORY: /)
})

t.test('grep: content search through the search service, ripgrep-style lines, its errors and bounds', async t => {
  const ctx = await setup(t)
  const mcp = await connectMcp(t, await listen(ctx.app), ctx.user.token, ctx.ws)
  await ctx.write('/src/a.ts', 'export const answer = 42\nconst other = 1\nexport function ask () {}\n')
  await ctx.write('/src/b.md', 'Answer: see a.ts\n')
  await ctx.write('/lib/c.ts', 'export {}\n')
  const head = await ctx.revision()

  const found = await mcp.call('grep', { pattern: 'export', path: 'src' })
  t.notOk(found.isError)
  t.equal(found.text, `/src/a.ts:1:1: export const answer = 42\n/src/a.ts:3:1: export function ask () {}\n[2 matches in 1 of 2 files at revision ${head}]`, 'path:line:column: line, then the summary')
  t.match((await mcp.call('grep', { pattern: 'answer' })).text, /\/src\/a\.ts:1:14: export const answer = 42\n\/src\/b\.md:1:1: Answer: see a\.ts\n\[2 matches in 2 of 3 files/, 'smart case: lower case matches both')
  t.match((await mcp.call('grep', { pattern: 'Answer' })).text, /^\/src\/b\.md:1:1: Answer/, 'smart case: an upper-case letter is case-sensitive')
  t.match((await mcp.call('grep', { pattern: 'ask', contextLines: 1, include: ['*.ts'] })).text, /^\/src\/a\.ts-2-const other = 1\n\/src\/a\.ts:3:17: export function ask \(\) \{\}\n/, 'context lines, ripgrep-style')
  t.match((await mcp.call('grep', { pattern: 'export', maxResults: 1 })).text, /\[1 match in .*; there are more: narrow the path or the pattern, or raise maxResults\]$/, 'maxResults, and a note on the rest')
  t.match((await mcp.call('grep', { pattern: 'nothing here' })).text, /^No matches found\n\[0 matches/)
  const bad = await mcp.call('grep', { pattern: 'a(', isRegex: true })
  t.ok(bad.isError)
  t.match(bad.text, /^INVALID_PATTERN: /, 'an invalid regex is the contract\'s error')
  t.match((await mcp.call('grep', { pattern: 'x', path: '../etc' })).text, /^INVALID_PATH: /, 'a path outside the workspace')
})

t.test('mutating tools: each states the revision REST sees, and errors carry the contract codes', async t => {
  const ctx = await setup(t)
  const mcp = await connectMcp(t, await listen(ctx.app), ctx.user.token, ctx.ws)
  const mutate = async (name: string, args: Record<string, unknown>) => {
    const r = await mcp.call(name, args)
    t.notOk(r.isError, `${name}: ${r.text}`)
    const revision = await ctx.revision()
    t.equal(r.structured?.revision, revision, `${name}: structuredContent.revision is the workspace revision`)
    t.match(r.text, new RegExp(`\\nrevision: ${revision}( \\(.*\\))?$`), `${name}: the text states it`)
    return r.text
  }
  t.match(await mutate('write_file', { path: 'a.ts', content: 'A' }), /^Successfully wrote to a\.ts\nrevision: 1 \(created \/a\.ts, etag 1, 1 bytes\)$/)
  t.match(await mutate('write_file', { path: 'a.ts', content: 'AA', ifMatch: '1' }), /updated \/a\.ts, etag 2/)
  const stale = await mcp.call('write_file', { path: 'a.ts', content: 'B', ifMatch: '1' })
  t.ok(stale.isError)
  t.match(stale.text, /^PRECONDITION_FAILED: \/a\.ts changed since etag "1"\ndetails: \{"current":\{"path":"\/a\.ts"/)
  t.equal(await mutate('create_directory', { path: 'docs/api' }), 'Successfully created directory docs/api\nrevision: 3')
  t.equal(await mutate('create_directory', { path: 'docs/api' }), 'Successfully created directory docs/api\nrevision: 3', 'an existing directory: nothing changes')
  t.match((await mcp.call('create_directory', { path: 'a.ts' })).text, /^FILE_EXISTS: /)
  t.equal(await mutate('move_file', { source: 'a.ts', destination: 'docs/a.ts' }), 'Successfully moved a.ts to docs/a.ts\nrevision: 4')
  t.match((await mcp.call('move_file', { source: 'docs', destination: 'docs/inner' })).text, /^INVALID_MOVE: /)
  t.match((await mcp.call('move_file', { source: 'gone', destination: 'b' })).text, /^FILE_NOT_FOUND: /)
  t.equal(await mutate('copy_file', { source: 'docs', destination: 'copy' }), 'Successfully copied docs to copy\nrevision: 5')
  t.match((await mcp.call('copy_file', { source: 'docs', destination: 'copy' })).text, /^TARGET_EXISTS: /)
  t.same((await ctx.allPaths()).sort(), ['/copy', '/copy/a.ts', '/copy/api', '/docs', '/docs/a.ts', '/docs/api'])
  t.match((await mcp.call('delete', { path: 'copy', ifMatch: '1' })).text, /^PRECONDITION_FAILED: /)
  t.equal(await mutate('delete', { path: 'copy' }), 'Successfully deleted copy (3 entries)\nrevision: 6')
  t.match((await mcp.call('delete', { path: 'copy' })).text, /^FILE_NOT_FOUND: /)
  t.match((await mcp.call('delete', { path: '/' })).text, /^INVALID_PATH: /, 'the root cannot be deleted')

  const batch = await mutate('apply_batch', {
    operations: [{ type: 'create', path: 'b/one.ts', content: '1' }, { type: 'move', path: './b/one.ts', newPath: 'b/two.ts' }, { type: 'mkdir', path: 'c' }]
  })
  t.equal(batch, 'Applied 3 operations\n0: create /b/one.ts -> file /b/one.ts, etag 7 (revision 7)\n1: move /b/one.ts -> file /b/two.ts, etag 8 (revision 8)\n' +
    '2: mkdir /c -> directory /c, etag 9 (revision 9)\nrevision: 9')
  const failed = await mcp.call('apply_batch', { operations: [{ type: 'create', path: 'd.ts' }, { type: 'create', path: 'b/two.ts' }] })
  t.match(failed.text, /^FILE_EXISTS: operation 1: \/b\/two\.ts already exists\ndetails: \{"index":1,"code":"FILE_EXISTS"\}/)
  await ctx.unchanged(t, 9, 'a failed batch')
  t.match((await mcp.call('apply_batch', { operations: [{ type: 'explode', path: 'x' }] })).text, /^VALIDATION_FAILED: /)
  const above = await mcp.call('apply_batch', { operations: [{ type: 'mkdir', path: 'e' }, { type: 'move', path: 'e', newPath: '../e' }] })
  t.match(above.text, /^INVALID_PATH: operation 1: invalid path "\.\.\/e": outside the workspace \(the root is \/\)\ndetails: \{"index":1,"code":"INVALID_PATH"\}$/, 'a path error names its operation')
  await ctx.unchanged(t, 9, 'a batch with a bad path')
})

t.test('edit_file: the edit op, with its diff, dry run, ifMatch and the contract\'s edit errors', async t => {
  const ctx = await setup(t)
  const mcp = await connectMcp(t, await listen(ctx.app), ctx.user.token, ctx.ws)
  await ctx.write('/a.ts', 'const a = 1\r\nconst b = 2\r\nconst b = 2\r\n')
  const dry = await mcp.call('edit_file', { path: 'a.ts', edits: [{ oldText: 'const a = 1\n', newText: 'const a = 10\n' }], dryRun: true })
  t.notOk(dry.isError, dry.text)
  t.equal(dry.text, '```diff\ndiff --git a/a.ts b/a.ts\n--- a/a.ts\n+++ b/a.ts\n@@ -1,3 +1,3 @@\n-const a = 1\r\n+const a = 10\r\n const b = 2\r\n const b = 2\r\n```\n\n' +
    'dry run: nothing changed (the file\'s etag is still 1)')
  t.equal(dry.structured?.revision, undefined)
  await ctx.unchanged(t, 1, 'a dry run')
  const done = await mcp.call('edit_file', { path: 'a.ts', edits: [{ oldText: 'const a = 1', newText: 'const a = 10' }, { oldText: 'const b = 2', newText: 'const b = 3', replaceAll: true }] })
  t.match(done.text, /^```diff\ndiff --git a\/a\.ts b\/a\.ts\n[^]*```\n\nrevision: 2 \(etag 2\)$/)
  t.equal(done.structured?.revision, 2)
  t.equal((await ctx.read('/a.ts')).content, 'const a = 10\r\nconst b = 3\r\nconst b = 3\r\n', 'CRLF kept')
  const none = await mcp.call('edit_file', { path: 'a.ts', edits: [{ oldText: 'const c = 1', newText: '' }] })
  t.match(none.text, /^EDIT_NO_MATCH: edit 0: oldText was not found in \/a\.ts; closest lines: [^]*\ndetails: \{"editIndex":0,"closest":\[/)
  const twice = await mcp.call('edit_file', { path: 'a.ts', edits: [{ oldText: 'const b = 3', newText: '' }] })
  t.match(twice.text, /^EDIT_AMBIGUOUS: edit 0: oldText occurs 2 times in \/a\.ts \(lines 2, 3\)/)
  t.match((await mcp.call('edit_file', { path: 'a.ts', edits: [{ oldText: 'const a', newText: 'let a' }], ifMatch: '1' })).text, /^PRECONDITION_FAILED: /)
  t.match((await mcp.call('edit_file', { path: 'nope.ts', edits: [{ oldText: 'x', newText: 'y' }] })).text, /^FILE_NOT_FOUND: /)
  t.match((await mcp.call('edit_file', { path: 'a.ts', edits: [] })).text, /^VALIDATION_FAILED: /)
  await ctx.unchanged(t, 2, 'failed edits')
  await ctx.write('/fence.md', 'a\n```js\nx\n```\n')
  const fenced = await mcp.call('edit_file', { path: 'fence.md', edits: [{ oldText: 'x', newText: 'y' }] })
  t.match(fenced.text, /^````diff\n[^]*\n````\n\nrevision: /, 'a longer fence than the diff holds, as the reference server')
})

t.test('history tools: list_changes, file_history, revert_session (this MCP session by default)', async t => {
  const ctx = await setup(t)
  const base = await listen(ctx.app)
  await ctx.write('/keep.ts', 'by REST')
  const mcp = await connectMcp(t, base, ctx.user.token, ctx.ws)
  const sid = mcp.transport.sessionId ?? ''
  await mcp.call('write_file', { path: 'x.ts', content: '1' })
  await mcp.call('write_file', { path: 'x.ts', content: '2' })
  await mcp.call('move_file', { source: 'x.ts', destination: 'y.ts' })
  const changes = await mcp.call('list_changes', { since: 1 })
  t.match(changes.text, new RegExp(`^head: 4\n#2 create file /x.ts \\(session ${sid}, .*\\)\n#3 update file /x.ts .*\n#4 move file /x.ts -> /y.ts .*$`))
  t.match((await mcp.call('list_changes', { since: 0, limit: 2 })).text, /\n\[more: call list_changes with since=2\]$/)
  t.match((await mcp.call('list_changes', { since: 99 })).text, /^head: 4 \(reset: /)
  const history = await mcp.call('file_history', { path: 'y.ts', limit: 2 })
  t.match(history.text, /^#4 move file \/x\.ts -> \/y\.ts .*\n#3 update file \/x\.ts .*\n\[more: call file_history with cursor="[^"]+"\]$/)
  const cursor = /cursor=("[^"]+")/.exec(history.text)?.[1] ?? '""'
  t.match((await mcp.call('file_history', { path: 'y.ts', cursor: JSON.parse(cursor) as string })).text, /^#2 create file \/x\.ts/)
  t.equal((await mcp.call('file_history', { path: 'never.ts' })).text, 'No changes')

  const dry = await mcp.call('revert_session', { dryRun: true })
  t.match(dry.text, new RegExp(`^Would revert session ${sid}: 3 changes\n(.*\n)*dry run: nothing changed \\(it would end at revision 7\\)$`))
  t.equal(dry.structured?.revision, undefined, 'a dry run states no new revision')
  await ctx.unchanged(t, 4, 'a dry run')
  const undo = await mcp.call('revert_session', {})
  t.notOk(undo.isError, undo.text)
  t.same(await ctx.allPaths(), ['/keep.ts'], 'what this MCP session did is undone; what REST did stays')
  t.equal(undo.structured?.revision, await ctx.revision())
})

t.test('results over MCP_MAX_RESULT_BYTES are cut with a note saying how to get the rest', async t => {
  const ctx = await setup(t, { MCP_MAX_RESULT_BYTES: '4096' })
  const mcp = await connectMcp(t, await listen(ctx.app), ctx.user.token, ctx.ws)
  const lines = Array.from({ length: 1000 }, (_, i) => `line ${i + 1} ${'é'.repeat(5)}`)
  await ctx.write('/big.txt', lines.join('\n') + '\n')
  const r = await mcp.call('read_text_file', { path: 'big.txt' })
  t.notOk(r.isError)
  t.ok(Buffer.byteLength(r.text) <= 4096, `within the cap (${Buffer.byteLength(r.text)} bytes)`)
  t.equal(r.structured?.truncated, true)
  const m = /\n\n\[truncated: this result is (\d+) bytes \(1000 lines\), over MCP_MAX_RESULT_BYTES \(4096\); shown: the first (\d+) bytes \((\d+) whole lines\)\. Read the rest with read_lines \{"path": "\/big\.txt", "lines": "(\d+)-"\}\.\]$/.exec(r.text)
  t.ok(m, r.text.slice(-400))
  const shown = Number(m?.[3])
  t.equal(r.text.slice(0, r.text.indexOf('\n\n[truncated')), lines.slice(0, shown).join('\n') + '\n', 'whole lines, as stored')
  t.equal(Number(m?.[4]), shown + 1, 'the next line is where the rest starts')
  const next = await mcp.call('read_lines', { path: 'big.txt', lines: `${shown + 1}-${shown + 3}` })
  t.equal(next.text, `[/big.txt: lines ${shown + 1}-${shown + 3} of 1000]\n${lines.slice(shown, shown + 3).join('\n')}\n`)
  const ranged = await mcp.call('read_lines', { path: 'big.txt', lines: '100-' })
  t.match(ranged.text, /Read the rest with read_lines \{"path": "\/big\.txt", "lines": "\d+-1000"\}\.\]$/)
  const tailed = await mcp.call('read_text_file', { path: 'big.txt', tail: 500 })
  t.match(tailed.text, /^line 501 /, 'the last 500 lines')
  t.match(tailed.text, /"lines": "\d+-"\}\.\]$/)

  await ctx.batch(Array.from({ length: 250 }, (_, i) => ({ type: 'create', path: `/d/file-${String(i).padStart(3, '0')}.txt`, content: 'x' })))
  const tree = await mcp.call('directory_tree', { path: '/' })
  t.ok(Buffer.byteLength(tree.text) <= 4096, 'the tree fits')
  const cut = tree.text.indexOf('\n[truncated: the tree has 252 entries')
  t.ok(cut > 0, tree.text.slice(-300))
  t.doesNotThrow(() => JSON.parse(tree.text.slice(0, cut)), 'what is shown is whole JSON')
  t.match(tree.text, /The next is \/d\/file-\d+\.txt: call directory_tree on its directory, or leave parts out with excludePatterns\.\]$/)
  const listing = await mcp.call('list_directory', { path: 'd' })
  t.ok(Buffer.byteLength(listing.text) <= 4096)
  t.match(listing.text, /\[truncated: .*Find entries with search_files, or list subdirectories\.\]$/)
})
