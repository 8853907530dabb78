import { randomUUID } from 'node:crypto'
import { request as httpRequest } from 'node:http'
import fc from 'fast-check'
import type pg from 'pg'
import { UUID_PATTERN } from '../../schemas/common.js'

/**
 * Malformed requests generated from the OpenAPI document (issue 10, "Hardening": the
 * property-based suite). A case is a valid request for its route, from the route's schemas and
 * the test's own world (its workspace, users, sessions, files), plus at least one fault that makes
 * it invalid: a wrong type, a missing or extra property, a value past a bound, odd Unicode, NUL,
 * deep nesting, a bad id, cursor or header. So every case must be answered 4xx in the error shape.
 * Valid-but-odd values (RTL marks, emoji, combining marks, U+2028, `0x10` for 16…) are mixed in
 * as noise, so a fault is also tried next to inputs that are fine.
 */

export const FUZZ_SEED = Number(process.env.FUZZ_SEED ?? 20261201)
/** Cases per route (scale with FUZZ_RUNS for a longer local run). */
export const FUZZ_RUNS = Number(process.env.FUZZ_RUNS ?? 300)

/** The part of JSON Schema the route schemas use. */
export interface Schema {
  type?: string
  title?: string
  properties?: Record<string, Schema>
  required?: string[]
  additionalProperties?: boolean
  items?: Schema
  anyOf?: Schema[]
  enum?: unknown[]
  pattern?: string
  format?: string
  minLength?: number
  maxLength?: number
  minimum?: number
  maximum?: number
  minItems?: number
  maxItems?: number
  default?: unknown
  'x-json-document'?: { maxDepth: number }
}

export interface Parameter { name: string, in: 'path' | 'query' | 'header', required?: boolean, schema: Schema }
export interface OpenApiOperation {
  parameters?: Parameter[]
  requestBody?: { content: Record<string, { schema: Schema }> }
  security?: Array<Record<string, string[]>>
}
export interface OpenApiDocument { paths: Record<string, Record<string, OpenApiOperation>>, security?: unknown[] }

/** One route of the document. */
export interface Route {
  method: string
  /** the document's path, `{id}` style */
  template: string
  params: Parameter[]
  body: Schema | undefined
  secured: boolean
}

export function routesOf (doc: OpenApiDocument): Route[] {
  const out: Route[] = []
  for (const [documented, methods] of Object.entries(doc.paths)) {
    // The file routes' wildcard is documented as `{path}` (the rest of the URL, slashes and all):
    // the generators know it as Fastify's `*`, a tail of raw path segments.
    const wildcard = documented.endsWith('/{path}')
    const template = wildcard ? documented.replace(/\{path\}$/, '{*}') : documented
    for (const [method, op] of Object.entries(methods)) {
      out.push({
        method: method.toUpperCase(),
        template,
        params: (op.parameters ?? []).map(p => wildcard && p.in === 'path' && p.name === 'path' ? { ...p, name: '*' } : p),
        body: op.requestBody?.content['application/json']?.schema,
        secured: op.security === undefined ? (doc.security ?? []).length > 0 : op.security.some(s => Object.keys(s).length > 0)
      })
    }
  }
  return out
}

/** What the generators know of the world under test. */
export interface World {
  /** the caller: owner of `ws` */
  owner: { id: string, email: string, token: string, sessionId: string }
  /** an editor of `ws` */
  member: { id: string, email: string }
  /** a user who is not a member of `ws`; their own workspace and session */
  stranger: { id: string, sessionId: string, ws: string }
  /** a refresh token that must survive every malformed refresh or logout */
  refreshToken: string
  password: string
  ws: string
  head: number
  /** existing files and directories of `ws` */
  files: string[]
  dirs: string[]
  /** tokens the server must refuse: expired, alg none, wrong secret, bad sub, another's sid */
  badTokens: Record<string, string>
  /** a token that is valid but whose user does not exist */
  ghostToken: string
}

/** A request, as sent. `faults` names what makes it invalid. */
export interface Case {
  method: string
  url: string
  headers: Record<string, string>
  body?: string
  faults: string[]
  /** send over real HTTP (paths with `.`/`..` segments, which app.inject would resolve) */
  http: boolean
}

/** A value serialised as this JSON text, as it is (deep nesting, 1e400, a `__proto__` key). */
export class Raw { constructor (readonly text: string) {} }

export function toJson (value: unknown): string {
  if (value instanceof Raw) return value.text
  if (Array.isArray(value)) return '[' + value.map(toJson).join(',') + ']'
  if (value !== null && typeof value === 'object') {
    return '{' + Object.entries(value).map(([k, v]) => JSON.stringify(k) + ':' + toJson(v)).join(',') + '}'
  }
  return JSON.stringify(value) ?? 'null'
}

type G = fc.GeneratorValue

/** The helpers a generator draws with. */
export class Draw {
  constructor (readonly g: G) {}
  int (min: number, max: number): number { return this.g(fc.integer, { min, max }) }
  chance (percent: number): boolean { return this.int(0, 99) < percent }
  pick<T> (items: readonly T[]): T {
    if (items.length === 0) throw new Error('pick from nothing')
    return items[this.int(0, items.length - 1)] as T
  }

  /** Valid text with odd Unicode: RTL marks, zero-width joiners, combining marks, astral characters, U+2028. */
  oddText (maxLength = 12): string {
    const odd = ['\u202e', '\u200d', '\u0301', '😀', '\u2028', '\ufeff', 'é', 'e\u0301', '\u05d0', '𝕏', '\u00a0', '\u3000', ' ', '%', '#', '?', '"', "'", '<', '&', '*']
    const n = this.int(1, maxLength)
    let s = ''
    for (let i = 0; i < n; i++) s += this.chance(40) ? this.pick(odd) : this.g(fc.string, { unit: 'grapheme-ascii', minLength: 1, maxLength: 1 })
    return s
  }
}

export const NESTING = [1_000, 10_000, 50_000, 200_000]
/** `[[…1…]]` or `{"a":{"a":…1…}}`, `depth` deep, as JSON text. */
export function nested (depth: number, kind: 'array' | 'object'): Raw {
  return new Raw(kind === 'array' ? '['.repeat(depth) + '1' + ']'.repeat(depth) : '{"a":'.repeat(depth) + '1' + '}'.repeat(depth))
}

const UUID = new RegExp(UUID_PATTERN)
export const isUuidSchema = (s: Schema): boolean => s.pattern === UUID_PATTERN

/** Spellings of a valid id that are not its one spelling. */
export function badIds (d: Draw, id: string): string[] {
  return [
    id.toUpperCase(), `urn:uuid:${id}`, `{${id}}`, id.replace(/-/g, ''), id.slice(0, -1), id + '0', id.slice(0, -1) + 'g',
    ` ${id}`, `${id} `, id.replace(/-/g, '_'), '0', '-1', 'null', 'undefined', '..', '.', '\u0000', `${id}\u0000`,
    'é', '😀', '\u202e' + id, 'x'.repeat(d.pick([37, 300, 5000])), '-'.repeat(36), '00000000-0000-0000-0000-00000000000'
  ]
}

/** Path segments a canonical path may have, odd but valid. */
export function oddSegment (d: Draw): string {
  return d.pick(['fz', 'a b', 'café', 'cafe\u0301', '\u202etxt.exe', '😀', '𝕏', 'x\u2028y', '%41', '.hidden', '...', 'a.', '~', '\u00a0', d.oddText(8)])
}

/**
 * Path faults as a string (body fields, query values): each is refused with INVALID_PATH, whatever
 * the route. `base` is a valid path to spoil.
 */
export function badPath (d: Draw, base: string): string {
  const seg = 'x'.repeat(256)
  return d.pick([
    '', 'a', 'a/b', '.', '..', '/.', '/..', '/a/./b', '/a/../b', `${base}/..`, '//', '//a', '/a//b', `${base}/`, '/a/',
    '/a\u0000b', '/\u0000', `${base}\u0000`, '/a\u0001', '/a\u001f', '/a\u007f', '/a\nb', '/a\rb', '/a\tb', '/a\\b', '\\a',
    '/\ud800', '/a\udfff', '/x\ud83d', `/${seg}`, `/a/${'é'.repeat(128)}`, '/' + Array.from({ length: 520 }, () => 'ab').join('/'),
    '/' + 'x'.repeat(1100), ' /a', '\u202e/a'
  ])
}

/** Path faults as a URL tail after `/files` (percent-encoded segments): each is 400. */
export function badUrlPath (d: Draw): { tail: string, http: boolean } {
  const seg = 'x'.repeat(256)
  const pick = d.pick<[string, boolean]>([
    ['/%00', false], ['/a%00b', false], ['/a%01', false], ['/a%1F', false], ['/a%7F', false], ['/a%0A', false], ['/a%5Cb', false],
    ['/a%2Fb', false], ['/a%2fb', false], ['/%2F', false], ['/a%ZZ', false], ['/a%', false], ['/a%E0%A4', false], ['/%ED%A0%80', false],
    ['/%C0%AF', false], ['/%FF', false], [`/${seg}`, false], ['/' + Array.from({ length: 520 }, () => 'ab').join('/'), false],
    ['/a//b', false], ['//a', false], ['/d/', false], ['/a.txt/', false],
    // WHATWG URLs (app.inject) resolve %2E segments as dots: only real HTTP sends them as written.
    ['/%2E%2E', true], ['/a/%2E', true], ['/a/%2e%2e/b', true],
    ['/..', true], ['/a/..', true], ['/a/../b', true], ['/./a', true], ['/a/.', true], ['/../../etc/passwd', true]
  ])
  return { tail: pick[0], http: pick[1] }
}

/** Bad media types: each is 400 (quoted values, spaces, non-ASCII, CR/LF, NUL, a trailing `;`). */
export const BAD_MEDIA_TYPES = ['text', 'text/', '/plain', 'text/plain;', 'text/plain; charset="utf-8"', ' text/plain', 'text/plain ',
  'text/plain; x=☃', 'text/plain\r\nx-a: b', 'text/plain\u0000', 'tëxt/plain', 'text/plain; a', 'text/plain;;a=b', 'text /plain',
  '', 'a/' + 'b'.repeat(300), '*/*;q=0.5 x', 'text/plain,text/html']

export const BAD_EMAILS = ['', 'a', 'a@', '@b.c', 'a@@b.c', 'a b@c.d', 'a@b c.d', '\u0000@a.b', 'a@b.c\u0000', 'a'.repeat(321) + '@b.c',
  'a@' + 'b'.repeat(330) + '.c', '<a@b.c>', 'a@b.c\n', '"a"@b@c']

export const BAD_BASE64 = ['a-b_', 'aGk=aGk=', 'a===', '====', 'aGk= ', ' aGk=', 'aG\nk=', 'aGk=\n', '%%%%', 'aGk==x', 'é', '\u0000']

/** Integers, as query text, that are not one within `schema`'s bounds. */
export function badIntegerText (d: Draw, s: Schema): string {
  const out = ['abc', '1.5', '1e400', '-1e400', 'Infinity', 'NaN', '', 'true', '[]', '{}', '1,2', '½', '١', '\u0000', '1\u0000']
  if (s.minimum !== undefined) out.push(String(s.minimum - 1), String(s.minimum - 1000))
  // Without a maximum a huge number is valid (a `since` past the head answers reset: true).
  if (s.maximum !== undefined) out.push(String(s.maximum + 1), String(s.maximum * 1000), '99999999999999999999999')
  return d.pick(out)
}

/** Integers (as query text) that are fine: written oddly. */
export function oddIntegerText (n: number): string[] {
  return [String(n), `0${n}`, ` ${n}`, `${n}.0`, `0x${n.toString(16)}`, `+${n}`]
}

/** Base64url JSON, as this server's tree cursors are written. */
const b64 = (text: string): string => Buffer.from(text).toString('base64url')

/** Tree cursors this server could not have made: each is 400. */
export function badTreeCursor (d: Draw): string {
  return d.pick([
    'x', '!!!', '%%%', '====', 'a'.repeat(2049), b64('not json'), b64(''), b64('null'), b64('1'), b64('"x"'), b64('[]'), b64('{}'),
    b64('{"p":"/a"}'), b64('{"r":1}'), b64('{"p":1,"r":1}'), b64('{"p":"/a","r":"1"}'), b64('{"p":"/a","r":-1}'), b64('{"p":"/a","r":1.5}'),
    b64('{"p":"/a","r":1e400}'), b64('{"p":"/a","r":9007199254740993}'), b64('{"p":"\\u0000","r":1}'), b64('{"p":"/a\\u0000","r":1}'),
    b64('{"p":"\\ud800","r":1}'), b64('{"p":"a","r":1}'), b64('{"p":"/a/../b","r":1}'), b64('{"p":"/a/","r":1}'), b64('{"p":"","r":1}'),
    b64('{"p":"' + 'x'.repeat(1500) + '","r":1}'), b64('{"p":"/a","r":null}'), b64('{"p":"/a","r":1}') + '!', b64('{"__proto__":{"p":"/a"},"r":1}'),
    b64('['.repeat(5000) + ']'.repeat(5000)), Buffer.from('{"p":"/a","r":1}').toString('base64') + '+/', `${b64('{"p":"/a","r":1}')}==`
  ])
}

/** Numeric cursors (history, activity) this server could not have made: each is 400. */
export const BAD_NUMBER_CURSORS = ['x', '-1', '1.5', '1e400', 'Infinity', 'NaN', '9007199254740993', '1e16', '-0.5', b64('{"p":"/a","r":1}'), '1,2']

export function uuid (): string { return randomUUID() }
export const isUuid = (s: string): boolean => UUID.test(s)

/** Sends a case over real HTTP, the path exactly as written. */
export async function sendHttp (base: string, c: Case): Promise<{ statusCode: number, headers: Record<string, string | string[] | undefined>, body: string }> {
  const url = new URL(base)
  return await new Promise((resolve, reject) => {
    const req = httpRequest({
      host: url.hostname,
      port: url.port,
      method: c.method,
      path: c.url,
      headers: { ...c.headers, ...(c.body === undefined ? {} : { 'content-length': String(Buffer.byteLength(c.body)) }) }
    }, res => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => { resolve({ statusCode: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }) })
      res.on('error', reject)
    })
    req.setTimeout(30_000, () => { req.destroy(new Error('timeout')) })
    req.on('error', reject)
    if (c.body !== undefined) req.write(c.body)
    req.end()
  })
}

/** Why a 4xx answer is not in the contract's error shape, or undefined when it is. */
export function errorShapeProblem (status: number, contentType: unknown, body: string): string | undefined {
  if (typeof contentType !== 'string' || !contentType.startsWith('application/json')) return `content-type ${String(contentType)}`
  let parsed: unknown
  try {
    parsed = JSON.parse(body)
  } catch {
    return 'body is not JSON'
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return 'body is not an object'
  const e = parsed as Record<string, unknown>
  if (e.statusCode !== status) return `statusCode ${String(e.statusCode)} is not the status ${status}`
  if (typeof e.code !== 'string' || !/^[A-Z][A-Z0-9_]*$/.test(e.code)) return `code ${JSON.stringify(e.code)}`
  if (typeof e.error !== 'string' || e.error === '') return 'no error text'
  if (typeof e.message !== 'string' || e.message === '') return 'no message'
  if (e.details !== undefined && (e.details === null || typeof e.details !== 'object' || Array.isArray(e.details))) return 'details is not an object'
  const extra = Object.keys(e).filter(k => !['statusCode', 'code', 'error', 'message', 'details'].includes(k))
  if (extra.length > 0) return `unexpected fields ${extra.join(', ')}`
  return undefined
}

/** A short, printable description of a case (for failure reports). */
export function describe (c: Case, max = 400): string {
  const clip = (s: string): string => s.length > max ? `${s.slice(0, max)}… (${s.length} chars)` : s
  const headers = Object.fromEntries(Object.entries(c.headers).map(([k, v]) => [k, k === 'authorization' ? v.slice(0, 20) + '…' : clip(v)]))
  return `${c.method} ${clip(c.url)} ${c.http ? '(http) ' : ''}faults=[${c.faults.join(', ')}] headers=${JSON.stringify(headers)}` +
    (c.body === undefined ? '' : ` body=${JSON.stringify(clip(c.body))}`)
}

/** Sends raw bytes on a new TCP connection and reads the answer until the server closes it. */
export async function sendRaw (base: string, raw: Buffer | string, timeoutMs = 5_000): Promise<{ statusCode: number, headers: Record<string, string>, body: string }> {
  const { connect } = await import('node:net')
  const url = new URL(base)
  const text = await new Promise<string>(resolve => {
    const socket = connect(Number(url.port), url.hostname, () => { socket.end(raw) })
    const chunks: Buffer[] = []
    socket.on('data', (d: Buffer) => chunks.push(d))
    socket.on('close', () => { resolve(Buffer.concat(chunks).toString('latin1')) })
    socket.on('error', () => {})
    socket.setTimeout(timeoutMs, () => { socket.destroy() })
  })
  const [head = '', ...rest] = text.split('\r\n\r\n')
  const [status = '', ...lines] = head.split('\r\n')
  const headers = Object.fromEntries(lines.map(l => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]))
  return { statusCode: Number(/^HTTP\/1\.[01] (\d{3})/.exec(status)?.[1] ?? 0), headers, body: Buffer.from(rest.join('\r\n\r\n'), 'latin1').toString('utf8') }
}

/**
 * A request Node's HTTP parser refuses: a valid request (`lines`, then the body) with one thing
 * broken in its framing. Each is 400 (or 413 for headers over the limit).
 */
export function malformedHttp (d: Draw, method: string, path: string, headers: Record<string, string>, body: string | undefined): { raw: Buffer, label: string } {
  const head = [`${method} ${path} HTTP/1.1`, 'Host: 127.0.0.1', 'Connection: close', ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)]
  const len = body === undefined ? [] : [`Content-Length: ${Buffer.byteLength(body)}`]
  const b = body ?? ''
  const make = (lines: string[], rest = b): Buffer => Buffer.concat([Buffer.from(lines.join('\r\n') + '\r\n\r\n', 'latin1'), Buffer.from(rest)])
  const i = d.int(1, head.length - 1)
  const kinds: Array<[string, () => Buffer]> = [
    ['NUL in a header value', () => make([...head.slice(0, i), 'X-A: a\u0000b', ...head.slice(i), ...len])],
    ['CR in a header value', () => make([...head, 'X-A: a\rb', ...len])],
    ['space before the colon', () => make([...head, 'X-A : b', ...len])],
    ['no colon', () => make([...head, 'X-A', ...len])],
    ['control char in a name', () => make([...head, 'X\u0001A: b', ...len])],
    ['non-token name', () => make([...head, 'X(A): b', ...len])],
    ['obsolete line folding', () => make([...head, 'X-A: a', ' folded', ...len])],
    ['two different Content-Lengths', () => make([...head, `Content-Length: ${b.length}`, `Content-Length: ${b.length + 1}`])],
    ['Content-Length not a number', () => make([...head, `Content-Length: ${d.pick(['x', '-1', '1.5', '0x10', '1 2', '99999999999999999999'])}`])],
    ['Content-Length and chunked', () => make([...head, `Content-Length: ${b.length}`, 'Transfer-Encoding: chunked'], `${b.length.toString(16)}\r\n${b}\r\n0\r\n\r\n`)],
    ['bad chunk size', () => make([...head, 'Transfer-Encoding: chunked'], `${d.pick(['zz', '-1', 'ffffffffffffffffff', '1 ; x\u0000'])}\r\n${b}\r\n0\r\n\r\n`)],
    ['unknown transfer coding', () => make([...head, `Transfer-Encoding: ${d.pick(['gzip', 'chunked, identity', 'x'])}`], b)],
    ['headers over the limit', () => make([...head, `X-Big: ${'a'.repeat(d.pick([17_000, 70_000]))}`, ...len])],
    // (Node itself takes a doubled space, answers an HTTP/0.9 line with nothing, and a request
    // without Host with an empty 400 of its own, before any handler: not generated here.)
    ['bad request line', () => make([d.pick([`${method} ${path} HTTP/1.1 x`, `G\u0000T ${path} HTTP/1.1`, `${method} ${path} HTTP/9.9`, `${method} ${path} FTP/1.1`, `${method} ${path.replace('/', '/ ')} HTTP/1.1`, `${method} ${path}\u0000 HTTP/1.1`, `${method} /\u007f HTTP/1.1`]), ...head.slice(1), ...len])],
    ['LF only, then NUL', () => Buffer.from(`${method} ${path} HTTP/1.1\nHost: x\n\u0000\n\n`, 'latin1')]
  ]
  const [label, build] = d.pick(kinds)
  return { raw: build(), label }
}

/**
 * A digest of everything a refused request must leave as it was: workspaces, members, files,
 * changes and their entries, users and refresh tokens. Equal before and after: nothing changed.
 */
export async function databaseDigest (db: pg.Client): Promise<string> {
  const { rows } = await db.query<{ h: string }>(`
    SELECT md5(string_agg(x, E'\\n' ORDER BY x)) AS h FROM (
      SELECT concat_ws('|', 'w', id, name, owner_id, revision, pruned_through) AS x FROM workspaces
      UNION ALL SELECT concat_ws('|', 'm', workspace_id, user_id, role) FROM workspace_members
      UNION ALL SELECT concat_ws('|', 'f', workspace_id, path, kind, blob_sha256, size, mime_type, metadata::text, version, etag) FROM files
      UNION ALL SELECT concat_ws('|', 'c', workspace_id, revision, op, path, new_path) FROM changes
      UNION ALL SELECT concat_ws('|', 'e', workspace_id, revision, seq) FROM change_entries
      UNION ALL SELECT concat_ws('|', 'u', id, email, permissions::text) FROM users
      UNION ALL SELECT concat_ws('|', 't', id, used_at, revoked_at) FROM refresh_tokens
    ) s`)
  return rows[0]?.h ?? ''
}
