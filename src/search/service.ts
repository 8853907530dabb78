import type { Db } from '../db/schema.js'
import type { Config } from '../core/config.js'
import type { Actor } from '../accounts/auth.js'
import { readAccess, requireRead } from '../accounts/workspaces.js'
import { canonicalPath, ROOT } from '../files/paths.js'
import type { FindResult, SearchBody, SearchMatch, SearchResult, SearchSummary } from '../../schemas/search.js'
import { compileQuery } from './pattern.js'
import { fileFilter } from './globs.js'
import { filesAt, type TreeFile } from './tree.js'
import { runSearch, TextCache, type SearchEvents } from './content.js'
import { PathIndex } from './fuzzy.js'

/**
 * The search service as REST routes, WebSocket RPC (and the MCP tools) call it: content search
 * over the tree at one revision, and the fuzzy file finder. Read access as every read: a viewer
 * may search, a non-member gets WORKSPACE_NOT_FOUND.
 */

/** A search's parameters; what is left out takes the API's defaults (schemas/search.ts). */
export type SearchParams = { workspaceId: string, query: string } & Partial<Omit<SearchBody, 'query'>>

export interface SearchRun {
  revision: number
  /** the matches in order, then the summary as the generator's return value */
  events: SearchEvents
}

export interface FindParams {
  workspaceId: string
  q: string
  limit?: number
}

export type SearchService = ReturnType<typeof createSearchService>

/** Workspaces whose head tree is kept in memory (about 1.5 MB for 10,000 files). */
const HEAD_TREES = 16

export function createSearchService (deps: { db: Db, config: Config }) {
  const { db, config } = deps
  const texts = new TextCache(config.SEARCH_CACHE_BYTES)
  /** the finder's path list of a head tree */
  const paths = new WeakMap<object, PathIndex>()

  /**
   * Checks access and the query and reads the tree: everything that can fail with a 4xx happens
   * here, before a streamed answer starts. The events then run the search itself.
   */
  /**
   * The tree at the head, kept per workspace and revision (a newer revision replaces it): a search
   * and the finder at the head need no more than the access query when nothing was written since.
   */
  const heads = new Map<string, { revision: number, files: TreeFile[] }>()
  async function headTree (actor: Actor, workspaceId: string): Promise<{ revision: number, files: TreeFile[] }> {
    const head = await readAccess(db, actor, workspaceId)
    const known = heads.get(workspaceId)
    if (known !== undefined && known.revision === head.revision) return known
    const tree = await filesAt(db, workspaceId, ROOT, undefined)
    heads.delete(workspaceId)
    heads.set(workspaceId, tree)
    for (const key of heads.keys()) {
      if (heads.size <= HEAD_TREES) break
      heads.delete(key)
    }
    return tree
  }

  /**
   * Checks access and the query and reads the tree: everything that can fail with a 4xx happens
   * here, before a streamed answer starts. The events then run the search itself.
   */
  async function open (actor: Actor, p: SearchParams, options: { signal?: AbortSignal } = {}): Promise<SearchRun> {
    const started = performance.now()
    const root = canonicalPath(p.path ?? '/')
    let tree: { revision: number, files: TreeFile[] }
    if (p.revision === undefined) {
      tree = await headTree(actor, p.workspaceId)
    } else {
      await requireRead(db, actor, p.workspaceId)
      tree = await filesAt(db, p.workspaceId, root, p.revision)
    }
    const query = compileQuery({
      query: p.query,
      isRegex: p.isRegex ?? false,
      caseSensitive: p.caseSensitive ?? 'smart',
      wholeWord: p.wholeWord ?? false
    })
    const selected = fileFilter(p.include ?? [], p.exclude ?? [], root)
    const maxFileBytes = p.maxFileBytes ?? 1024 * 1024
    const within = (path: string): boolean => root === ROOT || path === root || path.startsWith(root + '/')
    const files = tree.files.filter(f => f.size <= maxFileBytes && within(f.path) && selected(f.path))
    const events = runSearch(db, {
      cache: texts,
      query,
      files,
      revision: tree.revision,
      contextLines: p.contextLines ?? 0,
      maxResults: p.maxResults ?? 1000,
      started,
      deadline: started + config.SEARCH_TIMEOUT_MS,
      signal: options.signal
    })
    return { revision: tree.revision, events }
  }

  return {
    open,

    /** The whole answer at once (REST without streaming, RPC, MCP). */
    async search (actor: Actor, p: SearchParams, options: { signal?: AbortSignal } = {}): Promise<SearchResult> {
      const { events } = await open(actor, p, options)
      const matches: SearchMatch[] = []
      let step = await events.next()
      while (step.done !== true) {
        matches.push(step.value)
        step = await events.next()
      }
      const summary: SearchSummary = step.value
      const { revision, ...rest } = summary
      return { revision, matches, ...rest }
    },

    /** Paths of the current tree ranked against `q` (src/search/fuzzy.ts). */
    async find (actor: Actor, p: FindParams): Promise<FindResult> {
      const tree = await headTree(actor, p.workspaceId)
      let index = paths.get(tree)
      if (index === undefined) {
        index = new PathIndex(tree.files.map(f => f.path))
        paths.set(tree, index)
      }
      return { revision: tree.revision, results: index.rank(p.q, p.limit ?? 50) }
    }
  }
}
