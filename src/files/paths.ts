import { errors } from '../core/errors.js'

/** Workspace paths: canonical form and the checks of the contract's "Paths" section. */

export const ROOT = '/'
export const MAX_SEGMENT_BYTES = 255
export const MAX_PATH_BYTES = 1024

// U+0000–U+001F and U+007F; `\` is refused too, so no client can mistake it for a separator.
const FORBIDDEN = /[\u0000-\u001f\u007f\\]/u // eslint-disable-line no-control-regex

/**
 * Most paths at once: segments of printable ASCII but `/` and `\`, of at most MAX_SEGMENT_BYTES,
 * none `.` or `..`. ASCII is its own NFC form, one byte per character: such a path is canonical
 * as it is when it is within MAX_PATH_BYTES.
 */
const PLAIN = new RegExp(`^(?:/(?!\\.\\.?(?:/|$))[\\x20-\\x2e\\x30-\\x5b\\x5d-\\x7e]{1,${MAX_SEGMENT_BYTES}})+$`)

/** NFC-normalises and checks a path; returns the canonical form or throws INVALID_PATH. */
export function canonicalPath (input: string): string {
  if (input.length <= MAX_PATH_BYTES && PLAIN.test(input)) return input
  if (!input.isWellFormed()) throw errors.invalidPath(input, 'not valid Unicode')
  const path = input.normalize('NFC')
  if (path === '') throw errors.invalidPath(path, 'empty')
  if (!path.startsWith('/')) throw errors.invalidPath(path, 'must be absolute (start with /)')
  if (path === ROOT) return ROOT
  if (path.endsWith('/')) throw errors.invalidPath(path, 'trailing /')
  if (FORBIDDEN.test(path)) throw errors.invalidPath(path, 'control characters and \\ are not allowed')
  if (Buffer.byteLength(path) > MAX_PATH_BYTES) throw errors.invalidPath(path, `longer than ${MAX_PATH_BYTES} bytes`)
  for (const segment of path.slice(1).split('/')) {
    if (segment === '') throw errors.invalidPath(path, 'empty segment (//)')
    if (segment === '.' || segment === '..') throw errors.invalidPath(path, '. and .. segments are not allowed')
    if (Buffer.byteLength(segment) > MAX_SEGMENT_BYTES) throw errors.invalidPath(path, `a segment is longer than ${MAX_SEGMENT_BYTES} bytes`)
  }
  return path
}

/**
 * Checks a path the server makes up rather than receives: where a move or copy puts a
 * descendant (the target + the rest of its old path), or where a revert puts an entry back. Its
 * segments are segments of paths already checked, so only the length can break the rules; a path
 * past it could not be read or deleted again (and past ~2.7 kB it would not fit the index).
 */
export function checkPlacedPath (path: string): string {
  if (Buffer.byteLength(path) > MAX_PATH_BYTES) throw errors.invalidPath(path, `longer than ${MAX_PATH_BYTES} bytes`)
  return path
}

/**
 * The path of a `/files/{path}` URL: each segment percent-decoded on its own, so an encoded `/`
 * (`%2F`) cannot hide inside a segment. `rawTail` is the URL after `/files`, query removed.
 */
export function pathFromUrl (rawTail: string): string {
  if (rawTail === '' || rawTail === '/') return ROOT
  if (!rawTail.includes('%')) return canonicalPath(rawTail)
  const segments = rawTail.split('/').slice(1)
  const decoded = segments.map(segment => {
    let value: string
    try {
      value = decodeURIComponent(segment)
    } catch {
      throw errors.invalidPath(rawTail, 'malformed percent-encoding')
    }
    if (value.includes('/')) throw errors.invalidPath(rawTail, 'an encoded / (%2F) inside a segment')
    return value
  })
  return canonicalPath('/' + decoded.join('/'))
}

export function parentOf (path: string): string {
  const i = path.lastIndexOf('/')
  return i <= 0 ? ROOT : path.slice(0, i)
}

export function nameOf (path: string): string {
  return path === ROOT ? '' : path.slice(path.lastIndexOf('/') + 1)
}

export function depthOf (path: string): number {
  return path === ROOT ? 0 : path.split('/').length - 1
}

/** Every ancestor directory of a path, outermost first, excluding the root. */
export function ancestorsOf (path: string): string[] {
  const out: string[] = []
  for (let p = parentOf(path); p !== ROOT; p = parentOf(p)) out.unshift(p)
  return out
}

/** True when `path` is `dir` itself or lies below it. */
export function isWithin (path: string, dir: string): boolean {
  return dir === ROOT || path === dir || path.startsWith(dir + '/')
}
