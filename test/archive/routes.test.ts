import t from 'tap'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import tarStream from 'tar-stream'
import { registerUser } from '../helpers/app.js'
import { setup, sha256 } from '../helpers/files.js'
import { isError, type ActivityPage, type BatchResult } from '../helpers/http.js'
import { exportArchive, importArchive, makeTar, makeZip, treeDigest } from '../helpers/archive.js'

/** The archive routes' contract: export options, import semantics, preconditions, idempotency, access. */

/** The entries of a tar as `name type mode mtime size`. */
async function tarEntries (body: Buffer): Promise<Array<{ name: string, type: string, mode: number, mtime: number, size: number, bytes: string }>> {
  const extract = tarStream.extract()
  extract.end(body)
  const out = []
  for await (const e of extract) {
    const chunks: Buffer[] = []
    for await (const c of e) chunks.push(c as Buffer)
    out.push({ name: e.header.name, type: e.header.type ?? '', mode: e.header.mode ?? 0, mtime: e.header.mtime?.getTime() ?? 0, size: e.header.size ?? 0, bytes: Buffer.concat(chunks).toString() })
  }
  return out
}

t.test('export: modes, times, directories, long names, a subtree, a past revision', async t => {
  const c = await setup(t)
  const long = '/deep/' + 'd'.repeat(120) + '/' + 'f'.repeat(150) + '.txt'
  await c.write('/bin/run', '#!/bin/sh\n', { executable: true })
  await c.write('/src/a.ts', 'a')
  await c.write(long, 'long')
  await c.mkdir('/empty')
  const at = await c.revision()
  await c.write('/src/a.ts', 'changed')
  await c.del('/bin/run')
  await c.write('/later.txt', 'later')

  const head = await tarEntries((await exportArchive(c)).rawPayload)
  t.same(head.map(e => `${e.name} ${e.type}`), ['bin/ directory', 'deep/ directory', `deep/${'d'.repeat(120)}/ directory`, `${long.slice(1)} file`, 'empty/ directory', 'later.txt file', 'src/ directory', 'src/a.ts file'],
    'the head: parents before children, directories ending in /, names past 100 bytes whole (pax)')
  const metas = (await c.tree('/', 0)).entries
  for (const e of head) {
    const meta = metas.find(m => m.path === '/' + e.name.replace(/\/$/, ''))
    t.equal(e.mtime, Math.floor(Date.parse(meta?.updatedAt ?? '') / 1000) * 1000, `${e.name}: mtime is updatedAt`)
  }
  t.equal(head.find(e => e.name === 'src/a.ts')?.mode, 0o644)
  t.equal(head.find(e => e.name === 'src/')?.mode, 0o755)

  const past = await exportArchive(c, { revision: at })
  t.equal(past.headers['x-revision'], String(at))
  const then = await tarEntries(past.rawPayload)
  t.same(then.map(e => e.name), ['bin/', 'bin/run', 'deep/', `deep/${'d'.repeat(120)}/`, long.slice(1), 'empty/', 'src/', 'src/a.ts'], 'the tree at the revision')
  t.equal(then.find(e => e.name === 'bin/run')?.mode, 0o755, 'executable: 0755')
  t.equal(then.find(e => e.name === 'src/a.ts')?.bytes, 'a', 'the bytes then')

  const sub = await tarEntries((await exportArchive(c, { path: '/src', revision: at })).rawPayload)
  t.same(sub.map(e => e.name), ['a.ts'], 'a subtree, named relative to it')
  const zip = await exportArchive(c, { format: 'zip', path: '/src' })
  const dir = mkdtempSync(join(tmpdir(), 'wb-archive-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  writeFileSync(join(dir, 'a.zip'), zip.rawPayload)
  t.match(execFileSync('unzip', ['-Z', join(dir, 'a.zip')], { encoding: 'utf8' }), /-rw-r--r--.*a\.ts/, 'zip: Unix mode 0644')

  isError(t, await exportArchive(c, { revision: 999 }), 400, 'VALIDATION_FAILED', 'revision past the head')
  isError(t, await exportArchive(c, { path: '/nope' }), 404, 'FILE_NOT_FOUND', 'no such directory')
  isError(t, await exportArchive(c, { path: '/later.txt' }), 409, 'NOT_A_DIRECTORY', 'a file')
  isError(t, await exportArchive(c, { format: 'rar' }), 400, 'VALIDATION_FAILED', 'unknown format')
  isError(t, await exportArchive(c, { path: 'relative' }), 400, 'INVALID_PATH', 'bad path')
  isError(t, await exportArchive(c, { path: '/src', revision: 1 }), 404, 'FILE_NOT_FOUND', 'not there at that revision')
})

t.test('export: more entries than MAX_ENTRIES_PER_REQUEST is 413 before anything is sent', async t => {
  const c = await setup(t, { MAX_ENTRIES_PER_REQUEST: '5' })
  t.equal((await c.batch(['/a', '/b', '/c', '/d', '/e'].map(path => ({ type: 'create', path, content: path })))).statusCode, 200)
  t.equal((await exportArchive(c)).statusCode, 200, '5 entries: exported')
  await c.write('/f', 'f')
  isError(t, await exportArchive(c), 413, 'TOO_MANY_ENTRIES', '6 entries')
})

t.test('import: one batch, upserts, mkdir of empty directories, executable bits, events, activity', async t => {
  const c = await setup(t)
  await c.write('/app/old.txt', 'old')
  await c.write('/app/keep.txt', 'keep')
  const start = await c.revision()
  const tar = await makeTar([
    { name: './', type: 'directory' },
    { name: './old.txt', body: Buffer.from('new') },
    { name: './bin/', type: 'directory' },
    { name: './bin/tool', body: Buffer.from('#!'), mode: 0o755 },
    { name: './empty/', type: 'directory' }
  ])
  const res = await importArchive(c, tar, { path: '/app', type: 'application/x-tar', headers: { 'idempotency-key': 'imp-1' } })
  t.equal(res.statusCode, 200, res.body.slice(0, 300))
  const body = res.json<BatchResult>()
  t.equal(body.results.length, 3, 'two files and one empty directory (bin/ comes with its file)')
  t.equal(body.revision, start + 3)
  t.same(await treeDigest(c, '/app'), [
    '/bin directory - -', `/bin/tool file ${sha256('#!')} x`, '/empty directory - -', `/keep.txt file ${sha256('keep')} -`, `/old.txt file ${sha256('new')} -`
  ], 'files placed, replaced and kept')
  const feed = await c.changes(start)
  t.same(feed.changes.map(ch => `${ch.revision} ${ch.op} ${ch.path}`), [`${start + 1} create /app/bin/tool`, `${start + 2} mkdir /app/empty`, `${start + 3} update /app/old.txt`], 'one change per operation, in path order, as a batch')
  t.ok(feed.changes.every(ch => ch.opId === 'imp-1'), 'the Idempotency-Key is the opId')

  const again = await importArchive(c, tar, { path: '/app', type: 'application/x-tar', headers: { 'idempotency-key': 'imp-1' } })
  t.equal(again.statusCode, 200)
  t.same(again.json(), body, 'a retry with the key replays the answer')
  t.equal(await c.revision(), start + 3, 'and applies nothing again')
  isError(t, await importArchive(c, await makeTar([{ name: 'x', body: Buffer.from('x') }]), { path: '/app', headers: { 'idempotency-key': 'imp-1' } }), 422, 'IDEMPOTENCY_KEY_REUSED', 'the key with another archive')

  await c.app.activity.drain()
  const log = (await c.send('GET', `/v1/sessions/${c.user.sessionId}/activity?limit=1000`)).json<ActivityPage>()
  const entry = log.items.find(a => a.type === 'archive.import' && a.status === 200)
  t.match(entry, { type: 'archive.import', path: '/app', status: 200, revision: start + 3, details: { operations: 3, changes: 3 } }, 'the activity entry')
  t.ok(log.items.some(a => a.type === 'archive.import' && a.status === 422), 'refusals are in the log too')
})

t.test('import: If-Match on the workspace revision', async t => {
  const c = await setup(t)
  await c.write('/a', 'a')
  const zip = await makeZip([{ name: 'b', body: Buffer.from('b') }])
  const stale = await importArchive(c, zip, { headers: { 'if-match': '"0"' } })
  isError(t, stale, 412, 'PRECONDITION_FAILED', { details: { current: { revision: 1 } } })
  isError(t, await importArchive(c, zip, { headers: { 'if-match': 'nonsense' } }), 412, 'PRECONDITION_FAILED', 'not a revision')
  t.equal(await c.revision(), 1, 'nothing applied')
  t.equal((await importArchive(c, zip, { headers: { 'if-match': '"1"' } })).statusCode, 200, 'the head: applied')
  t.equal((await importArchive(c, zip, { headers: { 'if-match': '*' } })).statusCode, 200, '*: any revision')
  t.equal((await importArchive(c, zip, { headers: { 'if-match': 'W/"3"' } })).statusCode, 200, 'weak form')
})

t.test('access: a viewer exports but cannot import; strangers see no workspace', async t => {
  const c = await setup(t)
  await c.write('/a', 'a')
  const viewer = await registerUser(c.app)
  t.equal((await c.send('PUT', `/v1/workspaces/${c.ws}/members`, { email: viewer.email, role: 'viewer' })).statusCode, 200)
  const asViewer = { ...c, user: viewer, send: async (m: 'GET' | 'POST', u: string, p?: unknown, h: Record<string, string> = {}) => await c.app.inject({ method: m, url: u, headers: { ...viewer.auth, ...h }, ...(p === undefined ? {} : { payload: p as Buffer }) }) }
  const got = await asViewer.send('GET', `/v1/workspaces/${c.ws}/archive`)
  t.equal(got.statusCode, 200, 'a viewer exports')
  const posted = await asViewer.send('POST', `/v1/workspaces/${c.ws}/archive`, got.rawPayload, { 'content-type': 'application/x-tar' })
  t.equal(posted.statusCode, 403)
  t.equal(posted.json<{ code: string }>().code, 'FORBIDDEN')
  const stranger = await registerUser(c.app)
  const hidden = await c.app.inject({ method: 'GET', url: `/v1/workspaces/${c.ws}/archive`, headers: stranger.auth })
  t.equal(hidden.statusCode, 404)
  t.equal(hidden.json<{ code: string }>().code, 'WORKSPACE_NOT_FOUND')
  t.equal(await c.revision(), 1)
})

t.test('export at past revisions follows moves, copies, deletes and overwrites in history', async t => {
  const c = await setup(t)
  await c.write('/a/x.txt', 'x1', { executable: true })
  await c.write('/a/y.txt', 'y1')
  const r1 = await c.revision()
  t.equal((await c.op({ type: 'move', path: '/a', newPath: '/b' })).statusCode, 200)
  const r2 = await c.revision()
  t.equal((await c.op({ type: 'copy', path: '/b/x.txt', newPath: '/b/y.txt', overwrite: true })).statusCode, 200)
  const r3 = await c.revision()
  await c.del('/b/x.txt')
  await c.write('/a/x.txt', 'x2')
  const r4 = await c.revision()
  const names = async (revision: number): Promise<string[]> =>
    (await tarEntries((await exportArchive(c, { revision })).rawPayload)).map(e => `${e.name} ${e.type === 'file' ? e.bytes : ''} ${e.mode.toString(8)}`)
  t.same(await names(r1), ['a/  755', 'a/x.txt x1 755', 'a/y.txt y1 644'], 'before the move')
  t.same(await names(r2), ['b/  755', 'b/x.txt x1 755', 'b/y.txt y1 644'], 'after the move')
  t.same(await names(r3), ['b/  755', 'b/x.txt x1 755', 'b/y.txt x1 755'], 'after the copy over y')
  t.same(await names(r4), ['a/  755', 'a/x.txt x2 644', 'b/  755', 'b/y.txt x1 755'], 'after the delete, and a new (not executable) /a/x.txt')
  t.same(await names(0), [], 'revision 0: empty')
})
