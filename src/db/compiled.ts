import { createHash } from 'node:crypto'
import { createQueryId, sql, type Compilable, type CompiledQuery, type QueryResult, type RawBuilder } from 'kysely'
import type { Executor } from './schema.js'

/** Most statement texts given a prepared statement's name (each connection prepares those it runs). */
const MAX_PREPARED = 1000
const prepared = new Map<string, string>()

/**
 * The name a statement compiled here is prepared under (plugins/app/database.ts sends it as a
 * named prepared statement: PostgreSQL parses and plans it once per connection instead of on
 * every run), or undefined for any other text. Derived from the text, so the same everywhere.
 */
export function preparedName (sql: string): string | undefined {
  return prepared.get(sql)
}

function prepare (sql: string): void {
  if (prepared.size < MAX_PREPARED && !prepared.has(sql)) prepared.set(sql, `wb_${createHash('sha256').update(sql).digest('base64url').slice(0, 24)}`)
}

/**
 * A hot query compiled once and then run with each call's parameters: Kysely builds and compiles
 * a query tree on every `execute`, which on the uncached read path cost more CPU (and garbage)
 * than the rest of the request's own code. `build` must use each parameter once, in order, as
 * a value; the first call checks that it did. Every dialect here compiles to PostgreSQL's SQL.
 * Only for reads, and only of what a group commit's deferred write never changes (blobs, access;
 * an entry outside a group): a query compiled once is not shown to Kysely's plugins again, and
 * the group commit learns from them whether a member wrote (src/mutations/group-commit.ts
 * `WriteWatch`) and holds deferred writes back until they are sent (src/files/entry-memo.ts).
 * For writes, and for reads a group's plugins must see, `compiledPerShape`.
 */
export function compiledOnce<P extends unknown[], R> (build: (db: Executor, ...params: P) => Compilable<R>): (db: Executor, ...params: P) => Promise<R[]> {
  let compiled: CompiledQuery<R> | undefined
  return async (db, ...params) => {
    if (compiled === undefined) {
      const first = build(db, ...params).compile()
      if (first.query.kind !== 'SelectQueryNode') throw new Error(`compiledOnce: only for reads: ${first.sql}`)
      checkParameters(first, params)
      prepare(first.sql)
      compiled = first
    }
    return (await db.executeQuery<R>({ ...compiled, parameters: params })).rows
  }
}

/** Shapes one statement keeps compiled (a group's row counts); past them it is built each time. */
const MAX_SHAPES = 64

/**
 * A statement compiled once per shape (say, its number of rows) and then run with each call's
 * parameters, for the write path, where building and compiling each statement was a tenth of a
 * write's CPU. `build` makes the statement from `arg`; `paramsOf` gives, in order, the values it
 * sends as parameters (the first call of each shape checks that they are exactly the compiled
 * ones), and `shapeOf` what else decides its SQL text. Unlike `compiledOnce`, every run is shown
 * to the executor's plugins (the group commit's `WriteWatch` and entry memo see every statement
 * a member sends), which must leave it as it is.
 */
export function compiledPerShape<A, R> (
  build: (db: Executor, arg: A) => Compilable<R>,
  shapeOf: (arg: A) => string,
  paramsOf: (arg: A) => unknown[]
): (db: Executor, arg: A) => Promise<QueryResult<R>> {
  const shapes = new Map<string, CompiledQuery<R>>()
  return async (db, arg) => {
    const shape = shapeOf(arg)
    const parameters = paramsOf(arg)
    let compiled = shapes.get(shape)
    if (compiled === undefined) {
      compiled = build(db.withoutPlugins(), arg).compile()
      checkParameters(compiled, parameters)
      if (shapes.size < MAX_SHAPES) {
        shapes.set(shape, compiled)
        prepare(compiled.sql)
      }
    }
    const queryId = createQueryId()
    if (db.getExecutor().transformQuery(compiled.query, queryId) !== compiled.query) {
      throw new Error(`compiledPerShape: a plugin changed the statement: ${compiled.sql}`)
    }
    return await db.executeQuery<R>({ ...compiled, queryId, parameters })
  }
}

function checkParameters (compiled: CompiledQuery, params: readonly unknown[]): void {
  if (compiled.parameters.length !== params.length || compiled.parameters.some((p, i) => p !== params[i])) {
    throw new Error(`compiled: the statement does not take its ${params.length} parameters in order: ${compiled.sql}`)
  }
}

/** Columns of a table as rows name them, each with its PostgreSQL type (`recordsOf`). */
export type ColumnTypes<T> = ReadonlyArray<readonly [keyof T & string, string]>

/**
 * The rows as one JSON text, each with its `columns` only (a value a row lacks is null): one
 * native `JSON.stringify`, where an array per column cost a string per value escaped in
 * JavaScript (a fifth of what a write allocated). PostgreSQL's JSON refuses a lone surrogate,
 * which JSON.stringify writes as an escape: such strings are made well-formed first (U+FFFD),
 * as sending them as text did.
 */
export function rowsJson<T extends object> (columns: ColumnTypes<T>, rows: readonly T[]): string {
  const keys = columns.map(([column]) => column)
  const json = JSON.stringify(rows, keys)
  if (!json.includes('\\ud')) return json
  return JSON.stringify(rows.map(row => Object.fromEntries(keys.map(key => {
    const value: unknown = Reflect.get(row, key)
    return [key, typeof value === 'string' ? value.toWellFormed() : value]
  }))), keys)
}

/**
 * `select … from json_to_recordset($1::json) as r(column type, …)` over `rowsJson`: rows sent as
 * one parameter. Unlike a VALUES list, the statement's text is the same for any number of rows,
 * so `compiledPerShape` compiles it, and each connection prepares it, once. A VALUES list made a
 * new statement for every row count: PostgreSQL keeps each prepared statement for the
 * connection's life (a 15-row group's changes took 0.6 MB of a backend's memory), and past
 * `MAX_SHAPES` of them every write was parsed and planned again (bench/README.md, 2026-12-04).
 * A jsonb column's value is its JSON text (a string), read as text and cast.
 */
export function recordsOf<T> (columns: ColumnTypes<T>, json: string): RawBuilder<unknown> {
  const list = sql.join(columns.map(([column, type]) => type === 'jsonb' ? sql`${sql.id(column)}::jsonb` : sql.id(column)))
  const defs = sql.join(columns.map(([column, type]) => sql`${sql.id(column)} ${sql.raw(type === 'jsonb' ? 'text' : type)}`))
  return sql`select ${list} from json_to_recordset(${json}::json) as r(${defs})`
}
