import { Type, type Static } from '@sinclair/typebox'

/** GET and POST /v1/workspaces/{id}/archive (docs/api.md, "Archives"). */

export const ArchiveFormat = Type.Union([Type.Literal('tar'), Type.Literal('zip')], { default: 'tar' })

export const ExportQuery = Type.Object({
  format: ArchiveFormat,
  revision: Type.Optional(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, description: 'the tree as it was right after this revision (default: the head)' })),
  path: Type.String({ default: '/', maxLength: 4096, description: 'a directory: only what is below it, named relative to it' })
}, { additionalProperties: false })
export type ExportQuery = Static<typeof ExportQuery>

export const ImportQuery = Type.Object({
  path: Type.String({ default: '/', maxLength: 4096, description: 'the directory the archive\'s entries are placed below (created when missing)' })
}, { additionalProperties: false })
export type ImportQuery = Static<typeof ImportQuery>

export const ImportHeaders = Type.Object({
  'if-match': Type.Optional(Type.String({ maxLength: 100, description: 'the workspace revision ("<revision>", <revision> or W/"<revision>") the head must be at, else 412' }))
})

/** The media types an import accepts; the format itself is read from the body's first bytes. */
export const ARCHIVE_MEDIA_TYPES = ['application/x-tar', 'application/gzip', 'application/x-gzip', 'application/x-compressed-tar', 'application/zip', 'application/x-zip-compressed', 'application/octet-stream'] as const

export const ArchiveBody = Type.Unknown({ description: `the archive's bytes: a tar, tar.gz or zip (${ARCHIVE_MEDIA_TYPES.join(', ')})` })
