import { PassThrough, Readable } from 'node:stream'
import tarStream from 'tar-stream'
import yazl from 'yazl'
import type { Db } from '../db/schema.js'
import { errors } from '../core/errors.js'
import { nameOf, ROOT } from '../files/paths.js'
import { loadBlobs, type TreeEntry } from './tree.js'

/**
 * Writing a tree as a tar (POSIX ustar, pax headers for what ustar cannot hold) or a zip stream
 * (tar-stream and yazl write the formats). Nothing is built in memory: the entries' bytes are
 * read in batches (at most BATCH_FILES files, or one file over BATCH_BYTES) as the packer asks for
 * them, and the packer waits for the client to read (backpressure) before it asks for more.
 */

export type ArchiveFormat = 'tar' | 'zip'

const BATCH_FILES = 100
const BATCH_BYTES = 8 * 1024 * 1024
const STREAM_BUFFER = 256 * 1024

export const FILE_MODE = { executable: 0o755, plain: 0o644, directory: 0o755 } as const

/** An entry's name in the archive: its path below the base, a directory's ending in `/`. */
export function archiveName (base: string, e: TreeEntry): string {
  const rel = base === ROOT ? e.path.slice(1) : e.path.slice(base.length + 1)
  return e.kind === 'directory' ? rel + '/' : rel
}

/** The file name the download is offered under: `<base name or "workspace">-r<revision>.<format>`, ASCII only. */
export function downloadName (base: string, revision: number, format: ArchiveFormat): string {
  const stem = (base === ROOT ? 'workspace' : nameOf(base)).replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^[._]+/, '').slice(0, 100)
  return `${stem === '' ? 'workspace' : stem}-r${revision}.${format}`
}

/** The files' bytes, a batch at a time, for entries asked for in order. */
class BlobBatches {
  #files: TreeEntry[]
  #start = 0
  #batch = new Map<string, Buffer>()
  #end = 0

  constructor (readonly db: Db, entries: TreeEntry[]) {
    this.#files = entries.filter(e => e.kind === 'file')
  }

  get files (): TreeEntry[] {
    return this.#files
  }

  /** The bytes of the `i`-th file; reads the batch that starts with it unless it is in the one held. */
  async get (i: number): Promise<Buffer> {
    const e = this.#files[i]
    if (e === undefined) throw errors.internal()
    if (i < this.#start || i >= this.#end) {
      this.#batch = new Map()
      let bytes = 0
      let end = i
      while (end < this.#files.length && end - i < BATCH_FILES && (end === i || bytes + (this.#files[end]?.size ?? 0) <= BATCH_BYTES)) {
        bytes += this.#files[end]?.size ?? 0
        end++
      }
      this.#batch = await loadBlobs(this.db, this.#files.slice(i, end).map(f => f.sha256 ?? ''))
      this.#start = i
      this.#end = end
    }
    const bytes = this.#batch.get(e.sha256 ?? '')
    // Retention removed it since the listing (the file was deleted meanwhile): the archive stops.
    if (bytes === undefined) throw errors.fileNotFound(`${e.path} (content no longer retained)`)
    return bytes
  }
}

/** The archive of `entries` (below `base`) as a byte stream; a failure part-way destroys it. */
export function archiveStream (db: Db, base: string, entries: TreeEntry[], format: ArchiveFormat): Readable {
  return format === 'tar' ? tarOf(db, base, entries) : zipOf(db, base, entries)
}

function tarOf (db: Db, base: string, entries: TreeEntry[]): Readable {
  const pack = tarStream.pack()
  const blobs = new BlobBatches(db, entries)
  const add = async (header: Partial<tarStream.Header> & { name: string }, body: Buffer | undefined): Promise<void> => {
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error | null): void => { if (err === null || err === undefined) resolve(); else reject(err) }
      if (body === undefined) pack.entry(header, done)
      else pack.entry(header, body, done)
    })
  }
  const run = async (): Promise<void> => {
    let file = 0
    for (const e of entries) {
      const common = { name: archiveName(base, e), mtime: e.updatedAt }
      // Each entry's callback comes once the packer has handed its bytes on: the client's pace.
      if (e.kind === 'directory') await add({ ...common, type: 'directory', mode: FILE_MODE.directory }, undefined)
      else await add({ ...common, type: 'file', mode: e.executable ? FILE_MODE.executable : FILE_MODE.plain, size: e.size }, await blobs.get(file++))
    }
    pack.finalize()
  }
  run().catch((err: unknown) => { pack.destroy(err instanceof Error ? err : new Error(String(err))) })
  // Bytes, not objects: at most STREAM_BUFFER bytes wait here for the client.
  return Readable.from(pack, { objectMode: false, highWaterMark: STREAM_BUFFER })
}

function zipOf (db: Db, base: string, entries: TreeEntry[]): Readable {
  const zip = new yazl.ZipFile()
  const blobs = new BlobBatches(db, entries)
  const out = new PassThrough({ highWaterMark: STREAM_BUFFER })
  zip.on('error', (err: Error) => { out.destroy(err) })
  let file = 0
  for (const e of entries) {
    const options = { mtime: e.updatedAt }
    if (e.kind === 'directory') {
      zip.addEmptyDirectory(archiveName(base, e), { ...options, mode: 0o40000 | FILE_MODE.directory })
      continue
    }
    const index = file++
    // yazl asks for each file's bytes only when it comes to write them, one entry after another.
    zip.addReadStreamLazy(archiveName(base, e), { ...options, mode: 0o100000 | (e.executable ? FILE_MODE.executable : FILE_MODE.plain), size: e.size }, cb => {
      blobs.get(index).then(bytes => {
        const s = new PassThrough()
        s.end(bytes)
        cb(null, s)
      }, (err: unknown) => { cb(err, new PassThrough()) })
    })
  }
  zip.end()
  zip.outputStream.pipe(out)
  return out
}
