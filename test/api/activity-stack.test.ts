import t from 'tap'
import { build, createTestDatabase, createWorkspace, dbClient, registerUser } from '../helpers/app.js'
import { isError } from '../helpers/http.js'
import { Ctx } from '../helpers/files.js'
import { allActivity } from '../helpers/history.js'

/**
 * Issue 15, item 4: a failure's entry is `Backend Error` with its Error and Context, and, with
 * NODE_ENV=development only, the 5xx's stack trace fenced under `### Stack Trace:`. Outside
 * development a 500 says in the log what its answer says, and no stack is kept.
 * The 500 is real: the table of file contents is renamed away under the running server.
 */

for (const env of ['development', 'test'] as const) {
  t.test(`NODE_ENV=${env}: a 500 in the log`, async t => {
    const url = await createTestDatabase(t)
    const app = await build(t, { DATABASE_URL: url, NODE_ENV: env, RATE_LIMIT_ENABLED: 'false' })
    const user = await registerUser(app)
    const ctx = new Ctx(app, user, await createWorkspace(app, user))
    const db = await dbClient(t, url)
    await db.query('ALTER TABLE blobs RENAME TO blobs_away')
    const res = await ctx.put('/a.txt', { content: 'x' })
    isError(t, res, 500, 'INTERNAL', 'the write fails inside the pipeline')
    await app.activity.drain()
    const entry = (await allActivity(ctx, user.sessionId)).find(e => e.type === 'file.write')
    const md = (await ctx.getUrl(`/v1/sessions/${user.sessionId}/log.md`)).body
    const section = md.split(/^(?=## )/m).find(s => s.includes('### Type: file.write')) ?? ''
    const head = [
      '',
      '### Type: file.write',
      '### Operation: write',
      '### Path: `/a.txt`',
      `### Duration: ${entry?.durationMs ?? -1}ms`
    ]
    const context = `### Context: PUT /v1/workspaces/${ctx.ws}/files/a.txt`
    if (env === 'development') {
      t.match(entry, { status: 500, code: 'INTERNAL', message: /blobs/, context: `PUT /v1/workspaces/${ctx.ws}/files/a.txt`, stack: /^(\w*Error|error): [^]*\n {4}at / })
      const lines = section.split('\n')
      t.match(lines[0], /^## \S+ - Backend Error$/)
      t.same(lines.slice(1, 6), head)
      t.match(lines[6], /^### Error: INTERNAL: .*blobs/, 'the error\'s own message, in development')
      t.equal(lines[7], context)
      t.equal(lines[8], `### Details: status 500, workspace ${ctx.ws}`)
      t.same(lines.slice(9, 12), ['### Stack Trace:', '', '```'], 'then the stack, fenced')
      const end = lines.indexOf('```', 12)
      t.ok(end > 13, 'closed by a fence of its own')
      t.ok(lines.slice(12, end).every(l => l.startsWith('    ')), 'every line of the stack indented')
      t.match(lines.slice(12, end).join('\n'), /\n {8}at /, 'the stack\'s frames')
      t.same(lines.slice(end + 1), ['', ''], 'and the section ends')
    } else {
      t.match(entry, { status: 500, code: 'INTERNAL', message: 'internal server error', stack: null })
      t.equal(section, [/^## \S+ - Backend Error/.exec(section)?.[0] ?? '(no heading)', ...head,
        '### Error: INTERNAL: internal server error', context, `### Details: status 500, workspace ${ctx.ws}`, '', ''].join('\n'),
      'the answer\'s generic message, and no stack trace')
    }
    await db.query('ALTER TABLE blobs_away RENAME TO blobs')
  })
}
