import picomatch from 'picomatch'
import { errors } from '../core/errors.js'

/**
 * include/exclude globs as ripgrep's `-g` reads them (gitignore-style override globs): `include`
 * are `-g GLOB` and `exclude` are `-g '!GLOB'`, in that order. A glob with no slash (but a
 * trailing one) matches a name at any depth; one with a slash is anchored at the workspace root;
 * a trailing slash matches directories only; `*` and `?` never cross a `/`, `**` does; `{a,b}`
 * and `[…]` as usual; dotfiles are matched like any name. A leading `!` flips the glob (an
 * include becomes an exclusion, an exclude an inclusion).
 *
 * Which glob decides: the last one that matches. A directory an exclusion matches is skipped with
 * everything under it. A file is searched when the deciding glob includes it, or when none
 * matches and there are no inclusions at all.
 */

interface Glob {
  whitelist: boolean
  dirOnly: boolean
  test: (path: string) => boolean
}

type Decision = 'include' | 'exclude' | 'none'

function compileGlob (raw: string, whitelist: boolean): Glob {
  let glob = raw
  if (glob.startsWith('!')) {
    glob = glob.slice(1)
    whitelist = !whitelist
  }
  const dirOnly = glob.endsWith('/') && glob.length > 1
  if (dirOnly) glob = glob.slice(0, -1)
  const anchored = glob.includes('/')
  if (glob.startsWith('/')) glob = glob.slice(1)
  if (glob === '') throw errors.validation(`glob ${JSON.stringify(raw)} is empty`)
  let re: RegExp
  try {
    re = picomatch.makeRe(anchored ? glob : `**/${glob}`, { dot: true, noextglob: true, posix: true })
  } catch (err) {
    throw errors.validation(`glob ${JSON.stringify(raw)} is not valid: ${(err as Error).message}`)
  }
  return { whitelist, dirOnly, test: path => re.test(path) }
}

/**
 * A predicate on workspace paths (`/a/b.ts`): is the file searched? `root` is the searched
 * subtree: only directories below it are checked, as ripgrep never filters the paths it is given.
 */
export function fileFilter (include: string[], exclude: string[], root: string): (path: string) => boolean {
  const globs = [...include.map(g => compileGlob(g, true)), ...exclude.map(g => compileGlob(g, false))]
  if (globs.length === 0) return () => true
  const whitelists = globs.some(g => g.whitelist)
  const decide = (rel: string, isDir: boolean): Decision => {
    for (let i = globs.length - 1; i >= 0; i--) {
      const g = globs[i]
      if (g === undefined || (g.dirOnly && !isDir) || !g.test(rel)) continue
      return g.whitelist ? 'include' : 'exclude'
    }
    return 'none'
  }
  const dirs = new Map<string, boolean>()
  const rootDepth = root === '/' ? 0 : root.split('/').length - 1
  /** a directory (relative path) and all its ancestors below the root are not excluded */
  const dirOpen = (rel: string, depth: number): boolean => {
    if (depth <= rootDepth) return true
    const known = dirs.get(rel)
    if (known !== undefined) return known
    const slash = rel.lastIndexOf('/')
    const open = dirOpen(slash < 0 ? '' : rel.slice(0, slash), depth - 1) && decide(rel, true) !== 'exclude'
    dirs.set(rel, open)
    return open
  }
  return path => {
    const rel = path.slice(1)
    const slash = rel.lastIndexOf('/')
    const depth = rel.split('/').length - 1
    if (slash >= 0 && !dirOpen(rel.slice(0, slash), depth)) return false
    const d = decide(rel, false)
    return d === 'include' || (d === 'none' && !whitelists)
  }
}
