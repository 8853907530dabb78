import { createHash } from 'node:crypto'
import type { Readable } from 'node:stream'
import type { Db } from '../db/schema.js'
import type { Config } from '../core/config.js'
import type { Actor } from '../accounts/auth.js'
import { opaqueTag } from '../core/http.js'
import { canonicalPath } from '../files/paths.js'
import type { FileService, MutationMeta, Result } from '../files/service.js'
import { archiveStream, downloadName, type ArchiveFormat } from './export.js'
import { readArchive, type ImportLimits } from './import.js'
import { treeAt } from './tree.js'
import type { BatchResult } from '../../schemas/files.js'

/**
 * Archives of a workspace (docs/api.md, "Archives"): export streams a tree at a revision as a tar
 * or zip; import applies an archive's files as one batch through the file service's mutation
 * pipeline (idempotency, activity, events, group commit as for any write).
 */

export interface ArchiveDownload {
  stream: Readable
  revision: number
  filename: string
  contentType: string
}

export type ArchiveService = ReturnType<typeof createArchiveService>

/** If-Match on the workspace: `*` is any revision; a tag that is no revision matches none. */
function ifRevision (ifMatch: string | undefined): number | undefined {
  if (ifMatch === undefined) return undefined
  const tag = opaqueTag(ifMatch)
  if (tag === '*') return undefined
  return /^\d{1,15}$/.test(tag) ? Number(tag) : -1
}

export function createArchiveService (deps: { db: Db, config: Config, files: FileService }) {
  const { db, config, files } = deps
  const limits: ImportLimits = {
    maxEntries: config.MAX_ENTRIES_PER_REQUEST,
    maxFileBytes: config.MAX_FILE_BYTES,
    maxTotalBytes: config.ARCHIVE_MAX_UNCOMPRESSED_BYTES,
    maxRatio: config.ARCHIVE_MAX_RATIO
  }
  return {
    /** The tree (or the subtree at `path`) at `revision` (default: the head) as an archive stream. */
    async export (actor: Actor, workspaceId: string, p: { format: ArchiveFormat, path: string, revision?: number }): Promise<ArchiveDownload> {
      const path = canonicalPath(p.path)
      const tree = await treeAt(db, actor, workspaceId, path, p.revision, config.MAX_ENTRIES_PER_REQUEST)
      return {
        stream: archiveStream(db, path, tree.entries, p.format),
        revision: tree.revision,
        filename: downloadName(path, tree.revision, p.format),
        contentType: p.format === 'tar' ? 'application/x-tar' : 'application/zip'
      }
    },

    /** An archive's files below `path`, as one batch (answered as the batch route answers). */
    async import (actor: Actor, workspaceId: string, p: { body: Buffer, path: string, ifMatch?: string }, meta: MutationMeta = {}): Promise<Result<BatchResult>> {
      const path = canonicalPath(p.path)
      const digest = createHash('sha256').update(p.body).digest('hex')
      const revision = ifRevision(p.ifMatch)
      return await files.importFiles(actor, workspaceId, {
        path,
        params: { path, sha256: digest, ifMatch: p.ifMatch ?? null },
        ops: async () => await readArchive(p.body, path, limits),
        ...(revision === undefined ? {} : { ifRevision: revision })
      }, meta)
    }
  }
}
