import t, { type Test } from 'tap'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ROOT_DIR } from '../helpers/app.js'
import { another, setup } from '../helpers/files.js'
import { expectStatus, type BatchResult } from '../helpers/http.js'
import { exportArchive, importArchive, projectDigest, readProject, treeDigest, writeProject } from '../helpers/archive.js'

/** Export then import of a real project (a package from node_modules), as tar and as zip. */

const PROJECT = join(ROOT_DIR, 'node_modules', 'pino')
const project = readProject(PROJECT)

function tmp (t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'wb-archive-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  return dir
}

t.test('the project has what the test needs', async t => {
  t.ok(project.files.length > 100, `${project.files.length} files`)
  t.ok(project.files.some(f => f.executable), 'some executable')
  t.ok(project.dirs.length > 5, `${project.dirs.length} directories`)
})

for (const format of ['tar', 'zip'] as const) {
  t.test(`${format}: export then import gives an identical tree; system tools list and extract the same`, async t => {
    const c = await setup(t)
    await writeProject(c, '/', project.files)
    const before = await treeDigest(c)
    t.same(before, projectDigest(project), 'the workspace holds the project')
    const head = await c.revision()

    const res = await exportArchive(c, { format })
    t.equal(res.statusCode, 200, res.body.slice(0, 200))
    t.equal(res.headers['content-type'], format === 'tar' ? 'application/x-tar' : 'application/zip')
    t.equal(res.headers['content-disposition'], `attachment; filename="workspace-r${head}.${format}"`)
    t.equal(res.headers['x-revision'], String(head))

    // What the system's tar / unzip make of it: the same names, bytes and modes as the project on disk.
    const dir = tmp(t)
    const file = join(dir, `a.${format}`)
    writeFileSync(file, res.rawPayload)
    const listed = format === 'tar'
      ? execFileSync('tar', ['-tf', file], { encoding: 'utf8' })
      : execFileSync('zipinfo', ['-1', file], { encoding: 'utf8' })
    const names = listed.split('\n').filter(l => l !== '').sort()
    t.same(names, [...project.files.map(f => f.rel), ...project.dirs].sort(), `${format === 'tar' ? 'tar -tf' : 'zipinfo -1'} lists every file and directory`)
    if (format === 'zip') {
      const l = execFileSync('unzip', ['-l', file], { encoding: 'utf8' })
      t.match(l, new RegExp(`\\s${project.files.length + project.dirs.length} files\\s*$`), 'unzip -l counts every entry')
    }
    const out = join(dir, 'out')
    execFileSync('mkdir', [out])
    if (format === 'tar') execFileSync('tar', ['-xf', file, '-C', out])
    else execFileSync('unzip', ['-q', file, '-d', out])
    const extracted = readProject(out)
    t.same(projectDigest(extracted), projectDigest(project), 'extracted by the system tool: identical paths, bytes and executable bits')

    // Imported into another workspace: the same tree.
    const d = await another(c.app, c.user)
    const imported = await importArchive(d, res.rawPayload, { type: format === 'tar' ? 'application/x-tar' : 'application/zip' })
    const body = expectStatus<BatchResult>(imported, 200, 'import')
    t.equal(body.revision, await d.revision(), 'answered with the head')
    t.same(await treeDigest(d), before, 'identical tree: paths, bytes, executable flags')

    // Below a target directory, and a subtree's export named relative to it.
    const sub = await importArchive(d, res.rawPayload, { path: '/vendor/pino' })
    t.equal(sub.statusCode, 200, sub.body.slice(0, 300))
    t.same(await treeDigest(d, '/vendor/pino'), before.map(l => l), 'placed below ?path')
    const part = await exportArchive(d, { format, path: '/vendor' })
    t.equal(part.statusCode, 200)
    t.equal(part.headers['content-disposition'], `attachment; filename="vendor-r${await d.revision()}.${format}"`)
  })
}

t.test('tar.gz: the exported tar gzipped by the system imports the same', async t => {
  const c = await setup(t)
  await writeProject(c, '/', project.files)
  const res = await exportArchive(c)
  const dir = tmp(t)
  writeFileSync(join(dir, 'a.tar'), res.rawPayload)
  execFileSync('gzip', [join(dir, 'a.tar')])
  const gz = execFileSync('cat', [join(dir, 'a.tar.gz')])
  const d = await another(c.app, c.user)
  expectStatus(await importArchive(d, gz, { type: 'application/gzip' }), 200, 'import tar.gz')
  t.same(await treeDigest(d), await treeDigest(c))
})
