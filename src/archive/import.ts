import { promisify } from 'node:util'
import { crc32, gunzip as gunzipCb } from 'node:zlib'
import type { Readable } from 'node:stream'
import tarStream from 'tar-stream'
import yauzl from 'yauzl'
import { AppError, errors } from '../core/errors.js'
import { canonicalPath, ROOT } from '../files/paths.js'
import type { OpInput } from '../files/operations.js'

/**
 * Reading an uploaded tar, tar.gz or zip (tar-stream, node:zlib and yauzl read the formats) into
 * the operations of one batch, refusing what a hostile archive may hold before anything is
 * written: links and special files, names that leave the target, duplicates, and anything past
 * the bounds (entries, bytes per file, bytes in all, compression ratio). Sizes are checked from
 * the headers before a byte is inflated, and counted again while inflating.
 */

export interface ImportLimits {
  /** MAX_ENTRIES_PER_REQUEST: entries the archive may hold (directories included) */
  maxEntries: number
  /** MAX_FILE_BYTES */
  maxFileBytes: number
  /** ARCHIVE_MAX_UNCOMPRESSED_BYTES: the files' bytes together */
  maxTotalBytes: number
  /** ARCHIVE_MAX_RATIO */
  maxRatio: number
}

/** The ratio bound applies to what inflates past this (small files compress as they like). */
export const RATIO_FLOOR = 1024 * 1024

/** Room for tar's own bytes (a header, padding, pax records) per entry in a gunzipped tar. */
const TAR_OVERHEAD_PER_ENTRY = 4096

export type ArchiveKind = 'tar' | 'tar.gz' | 'zip'

interface Found {
  /** the workspace path it goes to */
  path: string
  kind: 'file' | 'directory'
  bytes: Buffer
  executable: boolean
}

const gunzip = promisify(gunzipCb)

/** The format from the body's first bytes: gzip 1f 8b, zip `PK\3\4` (or an empty zip's `PK\5\6`), tar `ustar` at 257. */
export function detectFormat (body: Buffer): ArchiveKind | null {
  if (body.length >= 2 && body[0] === 0x1f && body[1] === 0x8b) return 'tar.gz'
  if (body.length >= 4 && body.readUInt32LE(0) === 0x04034b50) return 'zip'
  if (body.length >= 22 && body.readUInt32LE(0) === 0x06054b50) return 'zip'
  if (body.length >= 262 && body.subarray(257, 262).toString('latin1') === 'ustar') return 'tar'
  // An empty tar: only its end (zero blocks).
  if (body.length >= 1024 && body.length % 512 === 0 && body.every(b => b === 0)) return 'tar'
  return null
}

const corrupt = (err: unknown): AppError => err instanceof AppError
  ? err
  : errors.invalidArchive('corrupt', `the archive is truncated or corrupt (${err instanceof Error ? err.message : String(err)})`)

/** Checks one entry's name and places it under `target`; '' for the archive's own root (`./`). */
class Placer {
  #seen = new Set<string>()
  constructor (readonly target: string, readonly limits: ImportLimits) {}

  place (rawName: string): string | null {
    if (rawName.startsWith('/') || /^[A-Za-z]:/.test(rawName)) throw errors.invalidPath(rawName, 'an archive entry may not be an absolute path')
    const segments = rawName.split('/').filter(s => s !== '' && s !== '.')
    if (segments.includes('..')) throw errors.invalidPath(rawName, 'an archive entry may not contain ..')
    if (segments.length === 0) return null
    const path = canonicalPath((this.target === ROOT ? '' : this.target) + '/' + segments.join('/'))
    if (this.#seen.has(path)) throw errors.invalidArchive('duplicate', `${rawName} is in the archive twice`, rawName)
    this.#seen.add(path)
    if (this.#seen.size > this.limits.maxEntries) throw errors.tooManyEntries(this.limits.maxEntries)
    return path
  }
}

/** Running totals: the files' bytes, against the total bound. */
class Budget {
  total = 0
  constructor (readonly limits: ImportLimits) {}

  /** A file of `size` bytes (as its header declares, or as counted): refused past either bound. */
  take (size: number): void {
    if (size > this.limits.maxFileBytes) throw errors.fileTooLarge(size, this.limits.maxFileBytes)
    this.total += size
    if (this.total > this.limits.maxTotalBytes) {
      throw errors.payloadTooLarge(`the archive's files come to more than ${this.limits.maxTotalBytes} bytes (ARCHIVE_MAX_UNCOMPRESSED_BYTES)`)
    }
  }
}

function ratioCheck (inflated: number, compressed: number, limits: ImportLimits, what: string): void {
  if (inflated > RATIO_FLOOR && inflated > limits.maxRatio * Math.max(compressed, 1)) {
    throw errors.invalidArchive('compression-ratio', `${what} inflates more than ${limits.maxRatio} times (ARCHIVE_MAX_RATIO)`)
  }
}

/** The bytes of a stream, at most `max` (more: `tooMany`). */
async function collect (stream: AsyncIterable<unknown>, max: number, tooMany: () => AppError): Promise<Buffer> {
  const chunks: Buffer[] = []
  let n = 0
  for await (const data of stream) {
    const chunk = Buffer.isBuffer(data) ? data : Buffer.from(data as Uint8Array)
    n += chunk.length
    if (n > max) throw tooMany()
    chunks.push(chunk)
  }
  return Buffer.concat(chunks, n)
}

async function readTar (tar: Buffer, placer: Placer, budget: Budget): Promise<Found[]> {
  const extract = tarStream.extract()
  const found: Found[] = []
  extract.end(tar)
  try {
    for await (const entry of extract) {
      const h = entry.header
      const name = h.name
      switch (h.type) {
        case 'file':
        case 'contiguous-file':
        case 'directory':
          break
        case 'symlink':
          throw errors.invalidArchive('symlink', `${name} is a symbolic link`, name)
        case 'link':
          throw errors.invalidArchive('hard-link', `${name} is a hard link`, name)
        case 'character-device':
        case 'block-device':
        case 'fifo':
          throw errors.invalidArchive('special-file', `${name} is a device or a fifo`, name)
        default:
          throw errors.invalidArchive('unsupported-entry', `${name} is an entry of type ${String(h.type)}`, name)
      }
      const path = placer.place(name)
      if (h.type === 'directory') {
        entry.resume()
        if (path !== null) found.push({ path, kind: 'directory', bytes: Buffer.alloc(0), executable: false })
        continue
      }
      if (path === null) throw errors.invalidPath(name, 'a file cannot be the archive\'s root')
      const size = h.size ?? 0
      budget.take(size)
      const bytes = await collect(entry, size, () => errors.invalidArchive('corrupt', `${name} is longer than its header says`, name))
      found.push({ path, kind: 'file', bytes, executable: ((h.mode ?? 0) & 0o111) !== 0 })
    }
  } catch (err) {
    extract.destroy()
    throw corrupt(err)
  }
  return found
}

async function openZip (body: Buffer): Promise<yauzl.ZipFile> {
  return await new Promise((resolve, reject) => {
    yauzl.fromBuffer(body, { lazyEntries: true, validateEntrySizes: true, strictFileNames: true, decodeStrings: true, autoClose: true }, (err, zip) => {
      if (err !== null) reject(corrupt(err))
      else resolve(zip)
    })
  })
}

/** yauzl's own refusals of a name, as the path errors they are. */
function zipError (err: unknown): AppError {
  const message = err instanceof Error ? err.message : ''
  const name = /^(?:absolute path|invalid relative path|invalid characters in fileName): (.*)$/s.exec(message)?.[1]
  if (name !== undefined) return errors.invalidPath(name, message.slice(0, message.indexOf(':')))
  return corrupt(err)
}

const S_IFMT = 0o170000
const S_IFREG = 0o100000
const S_IFDIR = 0o040000
const S_IFLNK = 0o120000

async function readZip (body: Buffer, placer: Placer, budget: Budget, limits: ImportLimits): Promise<Found[]> {
  const zip = await openZip(body)
  if (zip.entryCount > limits.maxEntries) {
    zip.close()
    throw errors.tooManyEntries(limits.maxEntries)
  }
  const found: Found[] = []
  try {
    for (;;) {
      const entry = await new Promise<yauzl.Entry | null>((resolve, reject) => {
        const cleanup = (): void => { zip.removeAllListeners('entry'); zip.removeAllListeners('end'); zip.removeAllListeners('error') }
        zip.once('entry', (e: yauzl.Entry) => { cleanup(); resolve(e) })
        zip.once('end', () => { cleanup(); resolve(null) })
        zip.once('error', (err: unknown) => { cleanup(); reject(zipError(err)) })
        zip.readEntry()
      })
      if (entry === null) break
      const name = entry.fileName
      // Unix hosts (3) keep the mode in the high bits of the external attributes; others have none.
      const mode = (entry.versionMadeBy >> 8) === 3 ? entry.externalFileAttributes >>> 16 : 0
      const type = mode & S_IFMT
      if (type === S_IFLNK) throw errors.invalidArchive('symlink', `${name} is a symbolic link`, name)
      if (type !== 0 && type !== S_IFREG && type !== S_IFDIR) throw errors.invalidArchive('special-file', `${name} is a device, socket or fifo`, name)
      if (entry.isEncrypted()) throw errors.invalidArchive('encrypted', `${name} is encrypted`, name)
      const isDir = name.endsWith('/') || type === S_IFDIR
      const path = placer.place(name)
      if (isDir) {
        if (path !== null) found.push({ path, kind: 'directory', bytes: Buffer.alloc(0), executable: false })
        continue
      }
      if (path === null) throw errors.invalidPath(name, 'a file cannot be the archive\'s root')
      // Before a byte is inflated: the declared size against the bounds, and against what it was compressed to.
      budget.take(entry.uncompressedSize)
      ratioCheck(entry.uncompressedSize, entry.compressedSize, limits, name)
      ratioCheck(budget.total, body.length, limits, 'the archive')
      const stream = await new Promise<Readable>((resolve, reject) => {
        zip.openReadStream(entry, (err, s) => { if (err !== null) reject(zipError(err)); else resolve(s) })
      })
      // yauzl stops a stream that yields more (or fewer) bytes than declared (validateEntrySizes); counted here too.
      let bytes: Buffer
      try {
        bytes = await collect(stream, entry.uncompressedSize, () => errors.invalidArchive('corrupt', `${name} inflates past its declared size`, name))
      } catch (err) {
        stream.destroy()
        throw zipError(err)
      }
      // yauzl does not check the CRC: a corrupt entry that still inflates to its size is caught here.
      if (crc32(bytes) !== entry.crc32) throw errors.invalidArchive('corrupt', `${name} fails its CRC-32 check`, name)
      found.push({ path, kind: 'file', bytes, executable: (mode & 0o111) !== 0 })
    }
  } catch (err) {
    zip.close()
    throw err instanceof AppError ? err : zipError(err)
  }
  return found
}

/**
 * The files and directories of an archive body, placed below `target`, as the operations of one
 * batch: files as upserts (content and executable flag), directories that hold no file of the
 * archive as mkdir (the others come with their files).
 */
export async function readArchive (body: Buffer, target: string, limits: ImportLimits): Promise<OpInput[]> {
  const format = detectFormat(body)
  if (format === null) throw errors.invalidArchive('unknown-format', 'the body is not a tar, tar.gz or zip archive')
  const placer = new Placer(target, limits)
  const budget = new Budget(limits)
  let found: Found[]
  if (format === 'zip') {
    found = await readZip(body, placer, budget, limits)
  } else {
    let tar = body
    if (format === 'tar.gz') {
      // Inflated at most to the smaller of the total bound (plus tar's own bytes) and the ratio bound.
      const byTotal = limits.maxTotalBytes + TAR_OVERHEAD_PER_ENTRY * (limits.maxEntries + 2)
      const byRatio = Math.max(RATIO_FLOOR, limits.maxRatio * body.length)
      try {
        tar = await gunzip(body, { maxOutputLength: Math.min(byTotal, byRatio) })
      } catch (err) {
        if ((err as { code?: string }).code !== 'ERR_BUFFER_TOO_LARGE') throw corrupt(err)
        if (byRatio <= byTotal) throw errors.invalidArchive('compression-ratio', `the gzip stream inflates more than ${limits.maxRatio} times (ARCHIVE_MAX_RATIO)`)
        throw errors.payloadTooLarge(`the archive's files come to more than ${limits.maxTotalBytes} bytes (ARCHIVE_MAX_UNCOMPRESSED_BYTES)`)
      }
      if (detectFormat(tar) !== 'tar') throw errors.invalidArchive('unknown-format', 'the gzip stream does not hold a tar archive')
    }
    found = await readTar(tar, placer, budget)
  }
  const holdsFiles = new Set<string>()
  for (const f of found) {
    if (f.kind !== 'file') continue
    for (let p = f.path; p.lastIndexOf('/') > 0; p = p.slice(0, p.lastIndexOf('/'))) holdsFiles.add(p.slice(0, p.lastIndexOf('/')))
  }
  const ops: OpInput[] = []
  for (const f of found.sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)))) {
    if (f.kind === 'directory') {
      if (!holdsFiles.has(f.path)) ops.push({ type: 'mkdir', path: f.path })
    } else {
      ops.push({ type: 'update', upsert: true, path: f.path, bytes: f.bytes, executable: f.executable })
    }
  }
  return ops
}
