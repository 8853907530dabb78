import t, { type Test } from 'tap'
import v8 from 'node:v8'
import vm from 'node:vm'
import { gzipSync } from 'node:zlib'
import { isError, type ErrorReply } from '../helpers/http.js'
import { setup, type Ctx } from '../helpers/files.js'
import { gzipBomb, importArchive, makeTar, makeZip, patch, treeDigest, zipBomb } from '../helpers/archive.js'

/**
 * Hostile archives: each refused with its code and the workspace unchanged (revision and tree),
 * and bombs refused with the heap flat across repeats.
 */

v8.setFlagsFromString('--expose-gc')
const gc = vm.runInNewContext('gc') as () => void

const MiB = 1024 * 1024

/** Imports `body` and checks the refusal: status, code, details, and nothing changed. */
async function refused (t: Test, c: Ctx, body: Buffer, status: number, code: string, details: Record<string, unknown> | undefined, label: string, type = 'application/octet-stream'): Promise<ErrorReply> {
  const revision = await c.revision()
  const tree = await treeDigest(c)
  const res = await importArchive(c, body, { type })
  const err = isError(t, res, status, code, { label, ...(details === undefined ? {} : { details }) })
  t.equal(await c.revision(), revision, `${label}: revision unchanged`)
  t.same(await treeDigest(c), tree, `${label}: tree unchanged`)
  return err
}

const file = (name: string, text = 'x'): { name: string, body: Buffer } => ({ name, body: Buffer.from(text) })

t.test('names that leave the target, links, special files, duplicates and bad paths: refused', async t => {
  const c = await setup(t)
  await c.write('/keep.txt', 'keep')
  const ok = file('fine.txt')
  // tar
  await refused(t, c, await makeTar([ok, file('../evil.txt')]), 400, 'INVALID_PATH', undefined, 'tar ..')
  await refused(t, c, await makeTar([ok, file('a/../../evil.txt')]), 400, 'INVALID_PATH', undefined, 'tar a/../..')
  await refused(t, c, await makeTar([ok, file('/etc/passwd')]), 400, 'INVALID_PATH', undefined, 'tar absolute')
  await refused(t, c, await makeTar([ok, { name: 'link', type: 'symlink', linkname: '/etc/passwd' }]), 400, 'INVALID_ARCHIVE', { reason: 'symlink', entry: 'link' }, 'tar symlink')
  await refused(t, c, await makeTar([ok, { name: 'hard', type: 'link', linkname: 'fine.txt' }]), 400, 'INVALID_ARCHIVE', { reason: 'hard-link' }, 'tar hard link')
  await refused(t, c, await makeTar([ok, { name: 'tty', type: 'character-device', devmajor: 5, devminor: 0 }]), 400, 'INVALID_ARCHIVE', { reason: 'special-file' }, 'tar char device')
  await refused(t, c, await makeTar([ok, { name: 'disk', type: 'block-device', devmajor: 8, devminor: 0 }]), 400, 'INVALID_ARCHIVE', { reason: 'special-file' }, 'tar block device')
  await refused(t, c, await makeTar([ok, { name: 'pipe', type: 'fifo' }]), 400, 'INVALID_ARCHIVE', { reason: 'special-file' }, 'tar fifo')
  await refused(t, c, await makeTar([ok, file('fine.txt', 'again')]), 400, 'INVALID_ARCHIVE', { reason: 'duplicate' }, 'tar duplicate')
  await refused(t, c, await makeTar([ok, file('./fine.txt', 'again')]), 400, 'INVALID_ARCHIVE', { reason: 'duplicate' }, 'tar duplicate via ./')
  await refused(t, c, await makeTar([file('caf\u00e9'), file('cafe\u0301')]), 400, 'INVALID_ARCHIVE', { reason: 'duplicate' }, 'tar duplicate after NFC')
  await refused(t, c, await makeTar([ok, { name: 'd', type: 'directory' }, file('d')]), 400, 'INVALID_ARCHIVE', { reason: 'duplicate' }, 'tar file and directory of one name')
  await refused(t, c, await makeTar([ok, file('bad\u0001name')]), 400, 'INVALID_PATH', undefined, 'tar control character')
  await refused(t, c, await makeTar([ok, file('win\\path.txt')]), 400, 'INVALID_PATH', undefined, 'tar backslash')
  await refused(t, c, await makeTar([ok, file('x'.repeat(256))]), 400, 'INVALID_PATH', undefined, 'tar segment over 255 bytes (pax name)')
  await refused(t, c, await makeTar([ok, file('keep.txt/inner')]), 409, 'NOT_A_DIRECTORY', { index: 1, code: 'NOT_A_DIRECTORY' }, 'tar file below an existing file')
  // zip (yazl refuses such names, so they are patched into a zip it made)
  await refused(t, c, patch(await makeZip([ok, file('xx/evil.txt')]), 'xx/evil', '../evil'), 400, 'INVALID_PATH', undefined, 'zip ..')
  await refused(t, c, patch(await makeZip([ok, file('Xetc/passwd')]), 'Xetc', '/etc'), 400, 'INVALID_PATH', undefined, 'zip absolute')
  await refused(t, c, patch(await makeZip([ok, file('C_/x')]), 'C_/x', 'C:/x'), 400, 'INVALID_PATH', undefined, 'zip drive letter')
  await refused(t, c, patch(await makeZip([ok, file('a_b')]), 'a_b', 'a\\b'), 400, 'INVALID_PATH', undefined, 'zip backslash')
  await refused(t, c, await makeZip([ok, { name: 'link', body: Buffer.from('/etc/passwd'), mode: 0o120777 }]), 400, 'INVALID_ARCHIVE', { reason: 'symlink', entry: 'link' }, 'zip symlink')
  await refused(t, c, await makeZip([ok, { name: 'pipe', mode: 0o010644 }]), 400, 'INVALID_ARCHIVE', { reason: 'special-file' }, 'zip fifo')
  await refused(t, c, await makeZip([ok, file('fine.txt', 'again')]), 400, 'INVALID_ARCHIVE', { reason: 'duplicate' }, 'zip duplicate')
  await refused(t, c, await makeZip([ok, file('bad\u0001name')]), 400, 'INVALID_PATH', undefined, 'zip control character')
  // neither
  await refused(t, c, Buffer.from('just some text, no archive'), 400, 'INVALID_ARCHIVE', { reason: 'unknown-format' }, 'not an archive')
  await refused(t, c, Buffer.alloc(0), 400, 'INVALID_ARCHIVE', { reason: 'unknown-format' }, 'empty body')
  await refused(t, c, gzipSync('plain text'), 400, 'INVALID_ARCHIVE', { reason: 'unknown-format' }, 'gzip of no tar')
  const json = await importArchive(c, Buffer.from('{"a":1}'), { type: 'application/json' })
  isError(t, json, 415, 'UNSUPPORTED_MEDIA_TYPE', 'JSON body')
  t.same(await treeDigest(c), ['/keep.txt file ' + (await c.read('/keep.txt')).sha256 + ' -'], 'only what was there')
})

t.test('truncated and corrupt archives: refused', async t => {
  const c = await setup(t)
  const big = Buffer.alloc(4096, 'abcdefgh')
  const tar = await makeTar([file('a.txt'), { name: 'b.bin', body: big }])
  await refused(t, c, tar.subarray(0, 512 * 3 + 100), 400, 'INVALID_ARCHIVE', { reason: 'corrupt' }, 'tar cut inside a file')
  const badSum = Buffer.from(tar)
  badSum[100] = badSum[100] === 0x30 ? 0x31 : 0x30 // the first header's mode: its checksum no longer holds
  await refused(t, c, badSum, 400, 'INVALID_ARCHIVE', { reason: 'corrupt' }, 'tar header checksum')
  const gz = gzipSync(tar)
  await refused(t, c, gz.subarray(0, gz.length - 12), 400, 'INVALID_ARCHIVE', { reason: 'corrupt' }, 'tar.gz cut short')
  const badGz = Buffer.from(gz)
  badGz.writeUInt32LE((badGz.readUInt32LE(badGz.length - 8) ^ 1) >>> 0, badGz.length - 8) // the gzip CRC
  await refused(t, c, badGz, 400, 'INVALID_ARCHIVE', { reason: 'corrupt' }, 'tar.gz bad CRC')
  const zip = await makeZip([file('a.txt'), { name: 'b.bin', body: big }])
  await refused(t, c, zip.subarray(0, zip.length - 30), 400, 'INVALID_ARCHIVE', { reason: 'corrupt' }, 'zip without its end record')
  await refused(t, c, zip.subarray(0, 60), 400, 'INVALID_ARCHIVE', { reason: 'corrupt' }, 'zip cut early')
  const stored = await makeZip([{ name: 'b.bin', body: big, compress: false }])
  const flipped = Buffer.from(stored)
  const at = flipped.indexOf(big.subarray(0, 16)) + 100
  flipped[at] = (flipped[at] ?? 0) ^ 0xff
  await refused(t, c, flipped, 400, 'INVALID_ARCHIVE', { reason: 'corrupt', entry: 'b.bin' }, 'zip entry failing its CRC')
  // sizes in the central directory that understate the data: counted while inflating
  const deflated = await makeZip([{ name: 'b.bin', body: big }])
  const cd = deflated.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]))
  const lying = Buffer.from(deflated)
  lying.writeUInt32LE(100, cd + 24)
  await refused(t, c, lying, 400, 'INVALID_ARCHIVE', { reason: 'corrupt' }, 'zip entry larger than declared')
  t.equal(await c.revision(), 0)
})

t.test('entries, file size and total size: at the limit and past it', async t => {
  const c = await setup(t, { MAX_ENTRIES_PER_REQUEST: '20', MAX_FILE_BYTES: '1024', ARCHIVE_MAX_UNCOMPRESSED_BYTES: '4096', ARCHIVE_MAX_BYTES: '65536' })
  const n = (k: number, size = 1): Array<{ name: string, body: Buffer }> => Array.from({ length: k }, (_, i) => ({ name: `f${String(i).padStart(2, '0')}`, body: Buffer.alloc(size, 'a') }))
  for (const make of [makeTar, makeZip] as const) {
    const kind = make === makeTar ? 'tar' : 'zip'
    await refused(t, c, await make(n(21)), 413, 'TOO_MANY_ENTRIES', { max: 20 }, `${kind}: 21 entries`)
    await refused(t, c, await make([...n(19), { name: 'dir/', ...(make === makeTar ? { type: 'directory' } : { dir: true }) } as never, { name: 'dir/x', body: Buffer.from('x') }]), 413, 'TOO_MANY_ENTRIES', { max: 20 }, `${kind}: 21 entries with a directory`)
    await refused(t, c, await make([{ name: 'big', body: Buffer.alloc(1025, 'a') }]), 413, 'FILE_TOO_LARGE', undefined, `${kind}: a file of 1025 bytes`)
    await refused(t, c, await make(n(5, 1024).map((f, i) => i === 4 ? { ...f, body: Buffer.alloc(1, 'a') } : f)), 413, 'PAYLOAD_TOO_LARGE', undefined, `${kind}: 4097 bytes in all`)
  }
  isError(t, await importArchive(c, Buffer.alloc(65537)), 413, 'PAYLOAD_TOO_LARGE', 'a body over ARCHIVE_MAX_BYTES')
  t.equal(await c.revision(), 0, 'nothing applied')
  const atLimit = await importArchive(c, await makeTar(n(20)))
  t.equal(atLimit.statusCode, 200, `20 entries: ${atLimit.body.slice(0, 200)}`)
  const d = await setup(t, { MAX_ENTRIES_PER_REQUEST: '20', MAX_FILE_BYTES: '1024', ARCHIVE_MAX_UNCOMPRESSED_BYTES: '4096' })
  const full = await importArchive(d, await makeZip(n(4, 1024)))
  t.equal(full.statusCode, 200, `4 files of 1024 bytes (4096 in all): ${full.body.slice(0, 200)}`)
  t.equal(await d.revision(), 4)
})

t.test('bombs: a zip bomb and a gzip bomb refused on their ratio, with the heap flat', async t => {
  // Large enough limits that only the ratio stops them.
  const c = await setup(t, { MAX_FILE_BYTES: String(256 * MiB), ARCHIVE_MAX_UNCOMPRESSED_BYTES: String(1024 * MiB) })
  const zip = await zipBomb(256 * MiB)
  const gz = await gzipBomb(256 * MiB)
  t.ok(zip.length < 2 * MiB && gz.length < 2 * MiB, `small bodies: zip ${zip.length}, tar.gz ${gz.length} bytes for 256 MiB`)
  await refused(t, c, zip, 400, 'INVALID_ARCHIVE', { reason: 'compression-ratio' }, 'zip bomb', 'application/zip')
  await refused(t, c, gz, 400, 'INVALID_ARCHIVE', { reason: 'compression-ratio' }, 'gzip bomb', 'application/gzip')
  // Just under the ratio: a small repetitive file inflates freely (the floor).
  const small = await importArchive(c, gzipSync(await makeTar([{ name: 'zeros', body: Buffer.alloc(512 * 1024) }])))
  t.equal(small.statusCode, 200, 'a 512 KiB file of zeros (under the 1 MiB floor) imports')

  const heap = (): number => { gc(); gc(); return process.memoryUsage().heapUsed }
  const arrays = (): number => { gc(); gc(); return process.memoryUsage().arrayBuffers }
  // Two rounds first: what the first request of a kind keeps (pools, the last answer) is not growth.
  for (let i = 0; i < 2; i++) {
    await importArchive(c, zip, { type: 'application/zip' })
    await importArchive(c, gz, { type: 'application/gzip' })
  }
  const before = heap()
  const beforeBuffers = arrays()
  for (let i = 0; i < 8; i++) {
    t.equal((await importArchive(c, zip, { type: 'application/zip' })).statusCode, 400)
    t.equal((await importArchive(c, gz, { type: 'application/gzip' })).statusCode, 400)
    t.comment(`round ${i}: heap ${Math.round((heap() - before) / 1024)} KiB, buffers ${Math.round((arrays() - beforeBuffers) / 1024)} KiB`)
  }
  const grew = heap() - before
  const grewBuffers = arrays() - beforeBuffers
  t.ok(grew < 16 * MiB, `heap after GC grew ${Math.round(grew / 1024)} KiB over 16 bombs`)
  t.ok(grewBuffers < 16 * MiB, `buffers after GC grew ${Math.round(grewBuffers / 1024)} KiB over 16 bombs`)
})

t.test('with the default limits, a bomb past the file size is refused before it is inflated', async t => {
  const c = await setup(t)
  await refused(t, c, await zipBomb(64 * MiB), 413, 'FILE_TOO_LARGE', undefined, 'zip bomb over MAX_FILE_BYTES', 'application/zip')
  await refused(t, c, await gzipBomb(64 * MiB), 400, 'INVALID_ARCHIVE', { reason: 'compression-ratio' }, 'gzip bomb', 'application/gzip')
})
