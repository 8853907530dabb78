import { createHash } from 'node:crypto'
import { isUtf8 } from 'node:buffer'
import { extname } from 'node:path'
import mime from 'mime-types'
import { errors } from '../core/errors.js'
import { jsonDocumentProblem } from '../core/validation.js'
import { MAX_METADATA_DEPTH, MEDIA_TYPE_PATTERN } from '../../schemas/files.js'

/** File content as it travels in JSON (`content` + `encoding`) and as it is stored (bytes + sha256). */

export type Encoding = 'utf8' | 'base64'

export interface Content {
  bytes: Buffer
  sha256: string
  size: number
}

// Strict standard base64: no whitespace, no URL alphabet, padding optional but never misplaced.
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/

export function decodeContent (content: string, encoding: Encoding, maxBytes: number): Content {
  let bytes: Buffer
  if (encoding === 'base64') {
    const unpadded = content.replace(/=+$/, '')
    if (!BASE64.test(content) || unpadded.length % 4 === 1 || (content.length !== unpadded.length && content.length % 4 !== 0)) {
      throw errors.validation('content is not valid base64')
    }
    if (Math.floor(unpadded.length * 3 / 4) > maxBytes) throw errors.fileTooLarge(Math.floor(unpadded.length * 3 / 4), maxBytes)
    bytes = Buffer.from(content, 'base64')
  } else {
    if (!content.isWellFormed()) throw errors.validation('content is not valid Unicode (lone surrogate)')
    bytes = Buffer.from(content, 'utf8')
  }
  return contentOf(bytes, maxBytes)
}

/** Bytes as content to store (an archive's file); past `maxBytes` 413 FILE_TOO_LARGE. */
export function contentOf (bytes: Buffer, maxBytes: number): Content {
  if (bytes.length > maxBytes) throw errors.fileTooLarge(bytes.length, maxBytes)
  return { bytes, sha256: createHash('sha256').update(bytes).digest('hex'), size: bytes.length }
}

/** utf8 when the bytes are valid UTF-8 text, else base64. */
export function encodeContent (bytes: Uint8Array): { content: string, encoding: Encoding } {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  return isUtf8(buf) ? { content: buf.toString('utf8'), encoding: 'utf8' } : { content: buf.toString('base64'), encoding: 'base64' }
}

// Source files that the mime database types wrongly for an IDE (.ts is MPEG transport stream there).
const CODE_TYPES: Record<string, string> = {
  '.ts': 'text/typescript',
  '.tsx': 'text/tsx',
  '.mts': 'text/typescript',
  '.cts': 'text/typescript',
  '.jsx': 'text/jsx',
  '.py': 'text/x-python',
  '.rs': 'text/x-rust',
  '.go': 'text/x-go',
  '.java': 'text/x-java',
  '.c': 'text/x-c',
  '.h': 'text/x-c',
  '.cpp': 'text/x-c++',
  '.rb': 'text/x-ruby',
  '.sh': 'text/x-shellscript',
  '.sql': 'application/sql',
  '.toml': 'application/toml',
  '.vue': 'text/x-vue',
  '.svelte': 'text/x-svelte'
}

export function guessMimeType (path: string, bytes: Buffer): string {
  const ext = extname(path).toLowerCase()
  const byExt = CODE_TYPES[ext] ?? mime.lookup(ext)
  if (typeof byExt === 'string') return byExt
  return isUtf8(bytes) ? 'text/plain' : 'application/octet-stream'
}

export const MAX_METADATA_BYTES = 16 * 1024

/**
 * Metadata as the jsonb text to store. The schemas check the same (their `x-json-document`
 * keyword); checked again here for callers that did not come through one, before JSON.stringify,
 * which would overflow the stack on deep nesting.
 */
export function checkMetadata (metadata: Record<string, unknown>): string {
  const problem = jsonDocumentProblem(metadata, MAX_METADATA_DEPTH)
  if (problem !== undefined) throw errors.validation(`metadata ${problem}`)
  const json = JSON.stringify(metadata)
  if (Buffer.byteLength(json) > MAX_METADATA_BYTES) throw errors.validation(`metadata is larger than ${MAX_METADATA_BYTES} bytes`)
  return json
}

const MEDIA_TYPE = new RegExp(MEDIA_TYPE_PATTERN)

/**
 * Types a browser shows as text, a raster image, audio or video: nothing in them runs. Every other
 * type (HTML, SVG, XML, JavaScript, PDF, and whatever is not on this list) may be a document with
 * script in it, on the API's origin, so its raw read is a download.
 */
const INLINE_TYPES = new Set([
  'text/plain', 'text/csv', 'text/markdown', 'application/json',
  'image/png', 'image/jpeg', 'image/gif', 'image/webp', 'image/avif',
  'audio/mpeg', 'audio/ogg', 'audio/wav', 'video/mp4', 'video/webm', 'video/ogg'
])

/** RFC 8187 ext-value: percent-encoded UTF-8, with the characters encodeURIComponent leaves but attr-char forbids. */
const extValue = (s: string): string => encodeURIComponent(s).replace(/['()*]/g, c => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)

/**
 * The headers of a raw read (`?format=raw`) of a file named `name`. The stored mimeType is the
 * Content-Type only if it is a media type (one stored before writes were checked may not be: it
 * is served as application/octet-stream rather than failing every read). Every raw read is
 * nosniff and sandboxed (no script, no same-origin, if a browser opens it); all but the inline
 * types are also an attachment.
 */
export function rawReadHeaders (mimeType: string | null, name: string): Record<string, string> {
  const type = mimeType !== null && MEDIA_TYPE.test(mimeType) ? mimeType : 'application/octet-stream'
  const essence = (type.split(';')[0] ?? '').trim().toLowerCase()
  const headers: Record<string, string> = {
    'content-type': type,
    'x-content-type-options': 'nosniff',
    'content-security-policy': 'sandbox'
  }
  if (!INLINE_TYPES.has(essence)) headers['content-disposition'] = `attachment; filename*=UTF-8''${extValue(name)}`
  return headers
}
