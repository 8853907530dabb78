import type { Compilable, CompiledQuery } from 'kysely'
import type { Executor } from './schema.js'

/**
 * A hot query compiled once and then run with each call's parameters: Kysely builds and compiles
 * a query tree on every `execute`, which on the uncached read path cost more CPU (and garbage)
 * than the rest of the request's own code. `build` must use each parameter once, in order, as
 * a value; the first call checks that it did. Every dialect here compiles to PostgreSQL's SQL.
 * Only for reads, and only of what a group commit's deferred write never changes (blobs, access;
 * an entry outside a group): a query compiled once is not shown to Kysely's plugins again, and
 * the group commit learns from them whether a member wrote (src/mutations/group-commit.ts
 * `WriteWatch`) and holds deferred writes back until they are sent (src/files/entry-memo.ts).
 */
export function compiledOnce<P extends unknown[], R> (build: (db: Executor, ...params: P) => Compilable<R>): (db: Executor, ...params: P) => Promise<R[]> {
  let compiled: CompiledQuery<R> | undefined
  return async (db, ...params) => {
    if (compiled === undefined) {
      const first = build(db, ...params).compile()
      if (first.query.kind !== 'SelectQueryNode') throw new Error(`compiledOnce: only for reads: ${first.sql}`)
      if (first.parameters.length !== params.length || first.parameters.some((p, i) => p !== params[i])) {
        throw new Error(`compiledOnce: the query does not take its ${params.length} parameters in order: ${first.sql}`)
      }
      compiled = first
    }
    return (await db.executeQuery<R>({ ...compiled, parameters: params })).rows
  }
}
