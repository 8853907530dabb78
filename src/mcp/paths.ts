import { errors } from '../core/errors.js'
import { canonicalPath, ROOT } from '../files/paths.js'

/**
 * Paths as agents write them. The workspace is the one allowed directory, and its root is `/`:
 * `/src/a.ts`, `src/a.ts` and `./src/a.ts` all name `/src/a.ts`; `.`, `./`, `` and `/` name the
 * root. As the reference filesystem server resolves paths (node's path.resolve), `.` segments,
 * empty segments and a trailing `/` are dropped and `..` goes up one level; going above the root
 * is an error (INVALID_PATH), as a path outside the allowed directories is there. What is left is
 * checked by the contract's path rules (src/files/paths.ts: NFC, control characters, lengths).
 */
export function agentPath (input: string): string {
  if (input.length > 4096) throw errors.invalidPath(input.slice(0, 100) + '…', 'longer than 4096 characters')
  const segments: string[] = []
  for (const segment of input.split('/')) {
    if (segment === '' || segment === '.') continue
    if (segment === '..') {
      if (segments.pop() === undefined) throw errors.invalidPath(input, 'outside the workspace (the root is /)')
      continue
    }
    segments.push(segment)
  }
  return segments.length === 0 ? ROOT : canonicalPath('/' + segments.join('/'))
}

/** `path` relative to `base` (a directory at or above it), as the reference server's globs see it. */
export function relativeTo (base: string, path: string): string {
  if (base === ROOT) return path.slice(1)
  return path === base ? '' : path.slice(base.length + 1)
}
