import {
  BAD_BASE64, BAD_EMAILS, BAD_MEDIA_TYPES, BAD_NUMBER_CURSORS, Draw, NESTING, Raw, badIds, badIntegerText, badPath, badTreeCursor, badUrlPath,
  isUuidSchema, nested, oddIntegerText, oddSegment, toJson, uuid, type Case, type Parameter, type Route, type Schema, type World
} from './fuzz.js'
import { TEXT_PATTERN } from '../../schemas/common.js'

/**
 * One generated case for one route of the OpenAPI document: a valid request derived from the
 * route's schemas and the world, then one or two faults (see fuzz.ts). Every fault listed here is
 * one the contract (docs/api.md) says is refused with a 4xx.
 */

type Json = unknown
type Pointer = Array<string | number>

const HEADER_SAFE = /^[\t\x20-\x7e\x80-\xff]*$/
const MUTATING = new Set(['PUT', 'POST', 'DELETE'])

/** Routes with nothing a client can get wrong: anything they are sent may be answered 2xx. */
export const isOpenRoute = (r: Route): boolean => !r.secured && r.body === undefined && r.params.length === 0

function encodeSegment (s: string): string {
  try {
    return encodeURIComponent(s)
  } catch {
    return s.replace(/[\ud800-\udfff]/g, '%ED%A0%80').replace(/[^A-Za-z0-9%._~-]/g, c => encodeURIComponent(c))
  }
}

function queryValue (s: string): string {
  try {
    return encodeURIComponent(s)
  } catch {
    return '%ED%A0%80'
  }
}

// --- valid values --------------------------------------------------------------------------

/** A path no entry has, with odd but valid segments. */
export function freshPath (d: Draw): string {
  return `/fz/${oddSegment(d)}${d.chance(50) ? '/' + oddSegment(d) : ''}/${uuid().slice(0, 8)}.txt`
}

export function validMetadata (d: Draw): Record<string, Json> {
  const out: Record<string, Json> = {}
  const n = d.int(0, 3)
  for (let i = 0; i < n; i++) out[d.oddText(6)] = d.pick<Json>([d.oddText(10), d.int(-5, 5), null, true, [1, 'x'], { k: { k: d.oddText(3) } }])
  return out
}

export function validContent (d: Draw): { content: string, encoding?: string } {
  if (d.chance(25)) return { content: Buffer.from(d.oddText(20)).toString('base64'), encoding: 'base64' }
  return { content: d.oddText(30), ...(d.chance(30) ? { encoding: 'utf8' } : {}) }
}

const VALID_MEDIA = ['text/plain', 'text/x-fuzz; a=b', 'application/json', 'application/octet-stream', 'image/png', "x-a/b+c!#$%&'*.^_`|~"]

/** A valid operation: its path exists or not as its type needs. */
export function validOperation (d: Draw, w: World): Record<string, Json> {
  const type = d.pick(['create', 'update', 'delete', 'move', 'copy', 'mkdir'])
  const op: Record<string, Json> = { type }
  switch (type) {
    case 'create': Object.assign(op, { path: freshPath(d) }, d.chance(70) ? validContent(d) : {}); break
    case 'update': Object.assign(op, { path: d.pick(w.files) }, d.chance(70) ? validContent(d) : {}); break
    case 'delete': op.path = d.pick([...w.files, ...w.dirs]); break
    case 'move': case 'copy': Object.assign(op, { path: d.pick([...w.files, ...w.dirs]), newPath: freshPath(d) }); break
    case 'mkdir': op.path = freshPath(d).replace(/\.txt$/, ''); break
  }
  if ((type === 'create' || type === 'update') && d.chance(30)) op.mimeType = d.pick(VALID_MEDIA)
  if ((type === 'create' || type === 'update') && d.chance(30)) op.metadata = validMetadata(d)
  if (d.chance(20)) op.sessionId = w.owner.sessionId
  if ((type === 'move' || type === 'copy') && d.chance(20)) op.overwrite = false
  return op
}

/** A value valid for `schema`, by the schema and, where it needs the world, by the property's name. */
function validFor (d: Draw, s: Schema, name: string, w: World, route: Route): Json {
  if (isUuidSchema(s)) return name === 'userId' ? w.member.id : /session|sid/i.test(name) ? w.owner.sessionId : w.ws
  if (s.anyOf !== undefined) return validFor(d, d.pick(s.anyOf), name, w, route)
  if (s.enum !== undefined) return d.pick(s.enum)
  switch (s.type) {
    case 'string':
      if (s.format === 'email') return route.template.endsWith('/members') ? w.member.email : route.template.endsWith('/register') ? `fz-${uuid()}@example.com` : w.owner.email
      if (name === 'password') return route.template.endsWith('/register') ? d.oddText(20).padEnd(8, 'x') : w.password
      if (name === 'refreshToken') return w.refreshToken
      if (name === 'path' || name === 'newPath') return freshPath(d)
      if (name === 'mimeType') return d.pick(VALID_MEDIA)
      return d.oddText(Math.min(s.maxLength ?? 20, 20)).slice(0, s.maxLength ?? 20).padEnd(s.minLength ?? 0, 'x')
    case 'integer': {
      const min = s.minimum ?? 0
      return d.int(min, Math.min(s.maximum ?? min + 5, min + 5))
    }
    case 'boolean': return d.chance(50)
    case 'array': {
      const n = d.int(s.minItems ?? 0, Math.min(s.maxItems ?? 3, (s.minItems ?? 0) + 2))
      return Array.from({ length: n }, () => s.items?.title === 'Operation' ? validOperation(d, w) : validFor(d, s.items ?? {}, name, w, route))
    }
    case 'object': {
      if (s['x-json-document'] !== undefined) return validMetadata(d)
      const out: Record<string, Json> = {}
      for (const [k, v] of Object.entries(s.properties ?? {})) {
        if ((s.required ?? []).includes(k) || d.chance(25)) out[k] = validFor(d, v, k, w, route)
      }
      return out
    }
  }
  return null
}

/** A valid body for the route: generic from the schema, with the semantics a few routes need. */
function validBody (d: Draw, route: Route, w: World): Json {
  const s = route.body as Schema
  if (route.template.endsWith('/operations')) return validOperation(d, w)
  if (route.template.endsWith('/revert')) {
    const body: Record<string, Json> = d.chance(50) ? { toRevision: d.int(0, w.head) } : { sessionId: w.owner.sessionId }
    if (d.chance(70)) body.dryRun = true
    if (d.chance(30)) body.force = d.chance(50)
    return body
  }
  if (route.template.includes('/files')) {
    const body: Record<string, Json> = validContent(d)
    if (d.chance(30)) body.mimeType = d.pick(VALID_MEDIA)
    if (d.chance(30)) body.metadata = validMetadata(d)
    return body
  }
  return validFor(d, s, '', w, route)
}

// --- body sites ------------------------------------------------------------------------------

interface Site { at: Pointer, schema: Schema, name: string, required: boolean }

/** Every place in `value` that `schema` describes: the value itself, each property and each item. */
function sitesOf (schema: Schema, value: Json, at: Pointer = [], name = '', required = true): Site[] {
  const out: Site[] = [{ at, schema, name, required }]
  if (schema.type === 'object' && value !== null && typeof value === 'object' && !Array.isArray(value) && schema['x-json-document'] === undefined) {
    for (const [k, s] of Object.entries(schema.properties ?? {})) {
      const present = k in (value as Record<string, Json>)
      // A property with a default is filled in when missing (Ajv useDefaults): not dropping it is no fault.
      const req = (schema.required ?? []).includes(k) && s.default === undefined
      if (present) out.push(...sitesOf(s, (value as Record<string, Json>)[k], [...at, k], k, req))
      else out.push({ at: [...at, k], schema: s, name: k, required: req })
    }
  }
  if (schema.type === 'array' && Array.isArray(value) && schema.items !== undefined) {
    // Items are not dropped: an array without one of them may be just as valid.
    value.forEach((v, i) => out.push(...sitesOf(schema.items as Schema, v, [...at, i], name, false)))
  }
  return out
}

function setAt (root: Json, at: Pointer, value: Json | undefined): Json {
  if (at.length === 0) return value
  const [head, ...rest] = at
  const copy: Record<string | number, Json> = Array.isArray(root) ? [...root] as unknown as Record<number, Json> : { ...(root as Record<string, Json>) }
  if (rest.length === 0 && value === undefined) {
    delete copy[head as string]
  } else {
    copy[head as string] = setAt(copy[head as string], rest, value)
  }
  return Array.isArray(root) ? Object.values(copy) : copy
}

function getAt (root: Json, at: Pointer): Json {
  let v = root
  for (const k of at) v = (v as Record<string | number, Json> | undefined)?.[k]
  return v
}

/** A value of another JSON type than the schema's. */
function wrongType (d: Draw, s: Schema): Json {
  // A union's branches each allow their own type (`"smart" | true | false`: string and boolean).
  const types = new Set(s.anyOf !== undefined ? s.anyOf.map(b => b.type ?? 'string') : [s.type])
  const type = [...types][0]
  const all: Array<[string, () => Json]> = [
    ['string', () => d.pick(['', '1', 'true', 'null', '{}', d.oddText(5)])],
    ['integer', () => d.pick([0, 1, -1, 1.5])],
    ['number', () => d.pick([1.5, new Raw('1e400'), new Raw('-0'), new Raw('1E+2')])],
    ['boolean', () => d.chance(50)],
    ['null', () => null],
    ['array', () => d.pick<Json>([[], [1], [[]], nested(d.pick([100, 1000]), 'array')])],
    ['object', () => d.pick<Json>([{}, { a: 1 }, nested(d.pick([100, 1000]), 'object')])]
  ]
  const others = all.filter(([t]) => !types.has(t) && !(types.has('number') && t === 'integer') && !(types.has('integer') && t === 'number'))
  if (type === 'integer') others.push(['fraction', () => d.pick<Json>([1.5, new Raw('1e400'), new Raw('-1e400'), new Raw('1.000001')])])
  return d.pick(others)[1]()
}

/** A value of the schema's type that its other keywords refuse, or undefined when there is none. */
function outOfBounds (d: Draw, s: Schema, w: World): Json | undefined {
  const options: Array<() => Json> = []
  if (isUuidSchema(s)) options.push(() => d.pick(badIds(d, w.owner.sessionId)))
  if (s.pattern === TEXT_PATTERN) options.push(() => d.pick(['\u0000', 'a\u0000b', '\ud800', 'x\udfff', '\udc00\ud800', 'ok\u0000']))
  if (s.pattern !== undefined && s.pattern.includes('A-Za-z]+/')) options.push(() => d.pick(BAD_MEDIA_TYPES))
  if (s.format === 'email') options.push(() => d.pick(BAD_EMAILS))
  if (s.maxLength !== undefined) options.push(() => 'x'.repeat(s.maxLength as number + d.pick([1, 2, 100])))
  if (s.minLength !== undefined && s.minLength > 0) options.push(() => 'x'.repeat(s.minLength as number - 1))
  if (s.enum !== undefined || s.anyOf?.every(a => a.enum !== undefined) === true) {
    options.push(() => d.pick(['', 'CREATE', 'UTF8', 'rename', 'owner', 'utf-8', 'hex', 'create ', '\u0000', 'create\u0000', 'ｃｒｅａｔｅ', '\ud800']))
  }
  if (s.type === 'integer') {
    if (s.minimum !== undefined) options.push(() => (s.minimum as number) - d.pick([1, 1000]))
    if (s.maximum !== undefined) options.push(() => (s.maximum as number) + d.pick([1, 1000]))
    options.push(() => d.pick<Json>([new Raw('1e400'), new Raw('-1e400'), 0.5]))
  }
  if (s.type === 'array') {
    if (s.minItems !== undefined && s.minItems > 0) options.push(() => [])
    if (s.maxItems !== undefined) options.push(() => Array.from({ length: (s.maxItems as number) + 1 }, (_, i) => ({ type: 'mkdir', path: `/fz/many/${i}` })))
  }
  if (s['x-json-document'] !== undefined) {
    options.push(() => d.pick<Json>([
      { k: 'a\u0000b' }, { 'a\u0000': 1 }, { k: ['\ud800'] }, { '\udfff': 1 }, { k: { k: [{ x: '\u0000' }] } },
      JSON.parse(nested(65, 'object').text) as Json, { k: 'x'.repeat(17 * 1024) },
      nested(d.pick(NESTING), 'object'), { a: nested(d.pick(NESTING), 'array') }, new Raw('{"constructor":{"prototype":{"x":1}}}'),
      new Raw('{"__proto__":{"x":1}}'), new Raw(`{"a":${'{"constructor":'.repeat(20_000)}1${'}'.repeat(20_000)}}`)
    ]))
  }
  return options.length === 0 ? undefined : d.pick(options)()
}

/** Keys no schema here allows, some of which a careless parser would treat specially. */
const EXTRA_KEYS = ['x', '', '\u0000', 'é', '😀', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'Type', 'PATH', 'path ', 'content\u0000']

/**
 * One fault at one place of `value` that `schema` describes: a required property dropped, an
 * unknown one added, a value past its bounds or pattern, or one of another type.
 */
export function siteFault (d: Draw, schema: Schema, value: Json, w: World): { value: Json, raw?: string, label: string } {
  const site = d.pick(sitesOf(schema, value))
  const where = '/' + site.at.join('/')
  const c = d.int(0, 9)
  if (c < 2 && site.required && site.at.length > 0 && getAt(value, site.at) !== undefined) {
    return { value: setAt(value, site.at, undefined), label: `drop ${where}` }
  }
  if (c < 4 && site.schema.type === 'object' && site.schema.additionalProperties === false) {
    const target = getAt(value, site.at)
    if (target !== null && typeof target === 'object' && !Array.isArray(target)) {
      if (site.at.length === 0 && d.chance(20)) return { value, raw: toJson(value).replace(/^\{/, '{"__proto__":{"x":1},'), label: 'extra /__proto__' }
      const key = d.pick(EXTRA_KEYS)
      return { value: setAt(value, [...site.at, key], d.pick<Json>([1, 'x', null, {}])), label: `extra ${where}/${JSON.stringify(key)}` }
    }
  }
  if (c < 7) {
    const v = outOfBounds(d, site.schema, w)
    if (v !== undefined) return { value: setAt(value, site.at, v), label: `bounds ${where}=${toJson(v).slice(0, 40)}` }
  }
  const v = wrongType(d, site.schema)
  return { value: setAt(value, site.at, v), label: `type ${where}=${toJson(v).slice(0, 40)}` }
}

// --- faults ----------------------------------------------------------------------------------

interface Draft {
  method: string
  params: Record<string, string>
  /** the valid path parameters, before any fault */
  valid: Record<string, string>
  /** the URL tail after `/files` or `/history`, percent-encoded */
  tail: string
  query: Array<[string, string]>
  headers: Record<string, string>
  body: Json | undefined
  /** body text as is (overrides `body`) */
  rawBody: string | undefined
  http: boolean
}

/** The faults that can be applied to a route, each with its weight. */
function faultKinds (r: Route): string[] {
  const kinds: string[] = ['method']
  if (r.secured) kinds.push('auth', 'auth', 'session-header')
  for (const p of r.params) {
    if (p.in === 'path') kinds.push(`param:${p.name}`, `param:${p.name}`, `param:${p.name}`)
    if (p.in === 'query') kinds.push(`query:${p.name}`, `query:${p.name}`, `query:${p.name}`)
    if (p.in === 'header' && p.name === 'if-match') kinds.push('header:if-match')
    if (p.in === 'header' && p.name === 'if-none-match' && r.method === 'PUT') kinds.push('header:if-none-match')
    if (p.in === 'header' && p.name === 'idempotency-key') kinds.push('header:idempotency-key')
  }
  if (r.body !== undefined) {
    kinds.push('content-type', 'json-syntax', 'body-shape', 'body-size')
    for (let i = 0; i < 8; i++) kinds.push('body-site')
    if (semanticFaults(r).length > 0) kinds.push('semantic', 'semantic', 'semantic')
  }
  // A path no entry has: 404 for a read.
  if (r.method === 'GET' && r.template.endsWith('/files/{*}')) kinds.push('get-missing')
  return kinds
}

/** Requests the schemas accept that the contract refuses, for the routes whose meaning is known here. */
export function semanticFaults (r: Route): string[] {
  if (r.template.endsWith('/operations') || r.template.endsWith('/operations/batch')) {
    return ['op:create-existing', 'op:update-missing', 'op:update-directory', 'op:delete-missing', 'op:move-no-newPath', 'op:move-into-itself',
      'op:copy-onto-existing', 'op:mkdir-on-file', 'op:under-a-file', 'op:ifMatch-stale', 'op:root', 'op:foreign-session', 'op:bad-path',
      'op:bad-newPath', 'op:bad-base64', 'op:lone-surrogate-content', 'op:too-large', 'op:newPath-too-long']
  }
  if (r.template.includes('/files') && r.method === 'PUT') return ['put:directory', 'put:under-a-file', 'put:bad-base64', 'put:lone-surrogate', 'put:too-large']
  if (r.template.endsWith('/revert')) return ['revert:future', 'revert:both-or-none']
  if (r.template.endsWith('/members') && r.method === 'PUT') return ['members:owner', 'members:unknown-email']
  if (r.template.endsWith('/login')) return ['login:wrong-password', 'login:unknown-email']
  if (r.template.endsWith('/register')) return ['register:taken']
  if (r.template.endsWith('/refresh')) return ['refresh:unknown']
  return []
}

/** Faults that hold only while the entries they name are as the world says. */
const STATEFUL = new Set(['op:create-existing', 'op:copy-onto-existing', 'op:mkdir-on-file', 'op:under-a-file'])

export function applySemantic (d: Draw, r: Route, w: World, f: Draft): string {
  const kind = d.pick(semanticFaults(r))
  const isObject = (v: Json): v is Record<string, Json> => v !== null && typeof v === 'object' && !Array.isArray(v)
  const op = (mutate: (op: Record<string, Json>) => Record<string, Json>): void => {
    // An earlier fault may have replaced the body: start again from a valid one.
    if (r.template.endsWith('/batch')) {
      if (!isObject(f.body) || !Array.isArray(f.body.operations) || f.body.operations.length === 0 || !f.body.operations.every(isObject)) {
        f.body = { operations: [validOperation(d, w)] }
      }
      const ops = (f.body as { operations: Array<Record<string, Json>> }).operations
      // A conflict with what exists goes first: an earlier operation could remove what it conflicts with.
      const i = STATEFUL.has(kind) ? 0 : d.int(0, ops.length - 1)
      f.body = { ...(f.body as object), operations: ops.map((o, j) => j === i ? mutate(o) : o) }
    } else {
      f.body = mutate(isObject(f.body) ? f.body : validOperation(d, w))
    }
  }
  const big = (): string => 'x'.repeat(65_537)
  switch (kind) {
    case 'op:create-existing': op(() => ({ type: 'create', path: d.pick([...w.files, ...w.dirs]) })); break
    case 'op:update-missing': op(() => ({ type: 'update', path: freshPath(d), content: 'x' })); break
    case 'op:update-directory': op(() => ({ type: 'update', path: d.pick(w.dirs), content: 'x' })); break
    case 'op:delete-missing': op(() => ({ type: 'delete', path: freshPath(d) })); break
    case 'op:move-no-newPath': op(() => ({ type: d.pick(['move', 'copy']), path: d.pick(w.files) })); break
    case 'op:move-into-itself': op(() => { const p = d.pick(w.dirs); return { type: d.pick(['move', 'copy']), path: p, newPath: d.pick([p, `${p}/x`, `${p}/x/y`]) } }); break
    case 'op:copy-onto-existing': op(() => ({ type: d.pick(['move', 'copy']), path: w.files[0] as string, newPath: d.pick([...w.files.slice(1), ...w.dirs]) })); break
    case 'op:mkdir-on-file': op(() => ({ type: 'mkdir', path: d.pick(w.files) })); break
    case 'op:under-a-file': op(() => ({ type: d.pick(['create', 'mkdir']), path: `${d.pick(w.files)}/x` })); break
    case 'op:ifMatch-stale': op(() => ({ type: d.pick(['update', 'delete']), path: d.pick(w.files), ifMatch: d.pick(['999999', '"1"x', 'W/"0"', '-1', 'abc']) })); break
    case 'op:root': op(() => ({ type: d.pick(['create', 'update', 'delete', 'mkdir', 'move', 'copy']), path: '/', newPath: '/x' })); break
    case 'op:foreign-session': op(o => ({ ...o, sessionId: w.stranger.sessionId })); break
    case 'op:bad-path': op(o => ({ ...o, path: badPath(d, String(o.path)) })); break
    case 'op:bad-newPath': op(() => ({ type: d.pick(['move', 'copy']), path: d.pick(w.files), newPath: badPath(d, '/n') })); break
    case 'op:bad-base64': op(() => ({ type: d.pick(['create', 'update']), path: d.pick(w.files), content: d.pick(BAD_BASE64), encoding: 'base64' })); break
    case 'op:lone-surrogate-content': op(() => ({ type: 'create', path: freshPath(d), content: d.pick(['\ud800', 'a\udc00b', '\udbff']) })); break
    case 'op:too-large': op(() => ({ type: 'create', path: freshPath(d), content: big() })); break
    // 1020 bytes: fine itself, but /d's descendants would be placed past 1024.
    case 'op:newPath-too-long': op(() => ({ type: d.pick(['copy', 'move']), path: '/d', newPath: ['n', 'm', 'o', 'p'].map(c => '/' + c.repeat(250)).join('') + '/' + 'q'.repeat(15) })); break
    case 'put:directory': f.tail = d.pick(w.dirs); break
    case 'put:under-a-file': f.tail = `${d.pick(w.files)}/x`; break
    case 'put:bad-base64': f.body = { content: d.pick(BAD_BASE64), encoding: 'base64' }; break
    case 'put:lone-surrogate': f.body = { content: d.pick(['\ud800', 'a\udc00b']) }; break
    case 'put:too-large': f.body = d.chance(50) ? { content: big() } : { content: Buffer.alloc(65_537).toString('base64'), encoding: 'base64' }; break
    case 'revert:future': f.body = { toRevision: w.head + d.pick([1, 1000]), ...(d.chance(50) ? { dryRun: true } : {}) }; break
    case 'revert:both-or-none': f.body = d.pick<Json>([{}, { dryRun: true }, { force: true }]); break
    case 'members:owner': f.body = { email: w.owner.email, role: d.pick(['editor', 'viewer']) }; break
    case 'members:unknown-email': f.body = { email: `nobody-${uuid()}@example.com`, role: 'viewer' }; break
    case 'login:wrong-password': f.body = { email: w.owner.email, password: w.password + 'x' }; break
    case 'login:unknown-email': f.body = { email: `nobody-${uuid()}@example.com`, password: w.password }; break
    case 'register:taken': f.body = { email: d.pick([w.owner.email, w.owner.email.toUpperCase(), ` ${w.member.email} `]), password: w.password }; break
    case 'refresh:unknown': f.body = { refreshToken: d.pick(['x', w.refreshToken + 'x', w.refreshToken.slice(1), uuid()]) }; break
  }
  return kind
}

/** Applies one fault of `kind` to the draft; returns its label. */
function applyFault (d: Draw, r: Route, w: World, f: Draft, kind: string): string {
  if (kind === 'method') {
    f.method = 'PATCH'
    return 'method PATCH'
  }
  if (kind === 'auth') {
    const token = w.owner.token
    const choices: Array<[string, string | undefined]> = [
      ['missing', undefined], ['Bearer', 'Bearer'], ['Bearer empty', 'Bearer '], ['Basic', 'Basic dXNlcjpwYXNz'], ['garbage', `Bearer ${d.oddText(10).replace(/[^\x21-\x7e]/g, 'x')}`],
      ['tampered', `Bearer ${token.slice(0, -3)}${token.endsWith('AAA') ? 'BBB' : 'AAA'}`], ['two tokens', `Bearer ${token} ${token}`], ['three parts', 'Bearer a.b.c'],
      ['huge', `Bearer ${'x'.repeat(8000)}`], ['latin1', 'Bearer \u00e9\u00ff'],
      ...Object.entries(w.badTokens).map(([k, v]): [string, string] => [k, `Bearer ${v}`])
    ]
    // A user that does not exist sees no workspace (404), no session (404) and has no account (401).
    if (/\{(id|sid)\}/.test(r.template) || /\/me$|\/stats$/.test(r.template) || (r.template === '/v1/workspaces' && r.method === 'POST')) {
      choices.push(['ghost user', `Bearer ${w.ghostToken}`])
    }
    const [label, value] = d.pick(choices)
    if (value === undefined) delete f.headers.authorization
    else f.headers.authorization = value
    // The token's sid is the session only without X-Session-Id.
    if (label === "another user's sid") delete f.headers['x-session-id']
    return `auth ${label}`
  }
  if (kind === 'session-header') {
    // Over HTTP a header value's surrounding spaces are not part of it: those spellings are fine there.
    const v = d.chance(20) ? w.stranger.sessionId : d.pick(badIds(d, w.owner.sessionId).filter(s => HEADER_SAFE.test(s) && s.trim() === s))
    f.headers['x-session-id'] = v
    return `x-session-id ${JSON.stringify(v.slice(0, 40))}`
  }
  if (kind.startsWith('param:')) {
    const name = kind.slice(6)
    if (name === '*') {
      const { tail, http } = badUrlPath(d)
      f.tail = tail
      f.http ||= http
      return `path ${tail.slice(0, 40)}`
    }
    const valid = f.valid[name] ?? ''
    const options = badIds(d, valid).filter(s => !(s === '' || s === '.' || s === '..'))
    if (name === 'id') options.push(uuid(), uuid(), w.stranger.ws)
    if (name === 'userId') options.push(w.owner.id, uuid(), w.stranger.id)
    if (name === 'sid') options.push(w.stranger.sessionId)
    const v = d.pick(options)
    f.params[name] = v
    return `param ${name}=${JSON.stringify(v.slice(0, 40))}`
  }
  if (kind.startsWith('query:')) {
    const name = kind.slice(6)
    const p = r.params.find(x => x.in === 'query' && x.name === name) as Parameter
    let v: string
    let raw = false
    if (name === 'cursor') v = r.template.endsWith('/tree') ? badTreeCursor(d) : d.pick(BAD_NUMBER_CURSORS)
    else if (name === 'path') {
      const c = d.int(0, 9)
      if (c < 6) v = badPath(d, '/d')
      else if (c < 7) { v = d.pick(['%ZZ', '%', '%ED%A0%80', '%00', '/a%2F..', '%C0%AF']); raw = true } else if (c < 8) v = freshPath(d) // missing: 404
      else v = d.pick(w.files) // a file: 409 NOT_A_DIRECTORY
    } else if (name === 'revision') v = d.pick([String(w.head + 1), String(w.head + 1000), badIntegerText(d, p.schema)])
    else if (p.schema.type === 'integer') v = badIntegerText(d, p.schema)
    else if (p.schema.anyOf !== undefined) v = d.pick(['', 'RAW', 'xml', 'raw ', 'json\u0000', 'base64'])
    else v = 'x'.repeat((p.schema.maxLength ?? 4096) + 1)
    f.query = f.query.filter(([k]) => k !== name)
    if (d.chance(15) && p.schema.type === 'integer') {
      f.query.push([name, '1'], [name, '2'])
      return `query ${name} twice`
    }
    f.query.push([name, raw ? v : queryValue(v)])
    return `query ${name}=${JSON.stringify(v.slice(0, 60))}`
  }
  if (kind === 'header:if-match') {
    f.headers['if-match'] = d.pick(['x'.repeat(101), '"999999"', 'W/"999999"', '"abc"', '""', '"1", "2"'])
    return `if-match ${f.headers['if-match'].slice(0, 20)}`
  }
  if (kind === 'header:if-none-match') {
    f.headers['if-none-match'] = d.pick(['"1"', 'W/"1"', 'abc', '**', 'x'.repeat(101), '"1", *x'])
    return `if-none-match ${f.headers['if-none-match'].slice(0, 20)}`
  }
  if (kind === 'header:idempotency-key') {
    f.headers['idempotency-key'] = d.pick(['', 'x'.repeat(201)])
    return `idempotency-key of ${f.headers['idempotency-key'].length} chars`
  }
  if (kind === 'content-type') {
    const v = d.pick([undefined, 'text/plain', 'application/xml', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'image/png',
      'text/json', 'application/json-patch+json', 'application/jsonx', 'json', '*/*', 'application/octet-stream'])
    if (v === undefined) delete f.headers['content-type']
    else f.headers['content-type'] = v
    if (f.rawBody === undefined && f.body === undefined) f.body = {}
    return `content-type ${String(v)}`
  }
  if (kind === 'json-syntax') {
    const text = toJson(f.body ?? {})
    f.rawBody = d.pick([
      '', ' ', '{', '}', '{"a":', text.slice(0, Math.max(1, text.length - 1)), `${text}x`, `${text}${text}`, text.replace(/"/g, "'"), `{${text}}`,
      'NaN', 'undefined', '{"a":NaN}', '{"a":1,}', '[1,]', '/* */' + text, text.includes(':') ? text.replace(':', '=') : '{', '\u0000', `${text}\u0000`,
      '['.repeat(d.pick(NESTING)), '{"a":'.repeat(d.pick([10_000, 100_000])), text.replace(/"(\w+)":/, '$1:'), '{"a":"\\u00"}', '{"a":"\\x41"}', '{"a":"\t"}'
    ])
    return `json ${JSON.stringify(f.rawBody.slice(0, 30))}`
  }
  if (kind === 'body-shape') {
    const v = d.pick<Json>([null, true, 0, 'x', [], [f.body], nested(d.pick(NESTING), 'array'), nested(d.pick([1_000, 50_000]), 'object'),
      new Raw('"' + 'x'.repeat(1000) + '"'), new Raw('1e400')])
    f.body = v
    return `body ${toJson(v).slice(0, 30)}`
  }
  if (kind === 'body-size') {
    const limit = r.template.includes('/files') || r.template.includes('/operations') ? 2 * 65_536 + 1024 * 1024 : 1024 * 1024
    f.body = { ...(f.body as object), pad: 'x'.repeat(limit + d.pick([1, 1000])) }
    return 'body over the limit'
  }
  if (kind === 'body-site') {
    const fault = siteFault(d, r.body as Schema, f.body, w)
    f.body = fault.value
    if (fault.raw !== undefined) f.rawBody = fault.raw
    return fault.label
  }
  if (kind === 'semantic') return applySemantic(d, r, w, f)
  if (kind === 'get-missing') {
    f.tail = freshPath(d).split('/').map(encodeSegment).join('/')
    return 'missing path'
  }
  throw new Error(`unknown fault ${kind}`)
}

/** A valid request for the route, from its schemas and the world. */
function draft (d: Draw, r: Route, w: World): Draft {
  const f: Draft = { method: r.method, params: {}, valid: {}, tail: '', query: [], headers: {}, body: undefined, rawBody: undefined, http: false }
  for (const p of r.params) {
    if (p.in === 'path' && p.name !== '*') f.params[p.name] = f.valid[p.name] = validFor(d, p.schema, p.name, w, r) as string
    if (p.in === 'query' && (p.required !== true || d.chance(60)) && d.chance(60)) {
      const s = p.schema
      let v: string
      if (p.name === 'path') v = d.pick(['/', ...w.dirs])
      else if (p.name === 'cursor') continue
      else if (p.name === 'revision') v = d.pick(oddIntegerText(d.int(0, w.head)))
      else if (s.type === 'integer') v = d.pick(oddIntegerText(d.int(s.minimum ?? 0, Math.min(s.maximum ?? 10, 10))))
      else if (s.anyOf !== undefined) v = String(validFor(d, s, p.name, w, r))
      else v = d.oddText(5)
      f.query.push([p.name, queryValue(v)])
    }
  }
  if (r.params.some(p => p.name === '*')) {
    const existing = r.method === 'PUT' ? freshPath(d) : r.method === 'DELETE' ? d.pick(w.files) : d.pick(['', '/', ...w.files, ...w.dirs])
    f.tail = existing.split('/').map(encodeSegment).join('/')
  }
  if (d.chance(15)) f.query.push([d.pick(['x', 'foo', '__proto__', 'constructor', 'format[]', 'a%00b']), queryValue(d.oddText(4))])
  if (r.secured) f.headers.authorization = `Bearer ${w.owner.token}`
  if (r.secured && d.chance(15)) f.headers['x-session-id'] = w.owner.sessionId
  if (MUTATING.has(r.method) && r.params.some(p => p.name === 'idempotency-key') && d.chance(15)) f.headers['idempotency-key'] = `fz-${d.int(0, 5)}`
  if (d.chance(10)) f.headers[d.pick(['accept', 'x-forwarded-for', 'origin', 'accept-encoding', 'x-fuzz'])] = d.pick(['*/*', 'gzip, br', 'http://evil.example', '1.2.3.4', '\u00e9'])
  if (r.body !== undefined) {
    f.body = validBody(d, r, w)
    f.headers['content-type'] = d.pick(['application/json', 'application/json; charset=utf-8', 'Application/JSON', 'application/json;charset=UTF-8'])
  }
  return f
}

function urlOf (r: Route, f: Draft): string {
  let url = r.template
  for (const [name, v] of Object.entries(f.params)) url = url.replace(`{${name}}`, encodeSegment(v))
  url = url.replace(/\/\{\*\}$/, f.tail === '' ? '' : f.tail.startsWith('/') ? f.tail : '/' + f.tail)
  if (r.params.some(p => p.name === '*') && !r.template.endsWith('{*}') && f.tail !== '') url += f.tail.startsWith('/') ? f.tail : '/' + f.tail
  const qs = f.query.map(([k, v]) => `${encodeURIComponent(k)}=${v}`).join('&')
  return qs === '' ? url : `${url}?${qs}`
}

/** One case for the route: a valid request and 1–2 faults (none for the open routes). */
export function makeCase (d: Draw, r: Route, w: World): Case {
  const f = draft(d, r, w)
  const faults: string[] = []
  if (!isOpenRoute(r)) {
    const kinds = faultKinds(r)
    const first = d.pick(kinds)
    faults.push(applyFault(d, r, w, f, first))
    // A second fault of another kind (the same kind twice could undo the first).
    const others = kinds.filter(k => k !== first && k !== 'body-site')
    if (d.chance(20) && others.length > 0) faults.push(applyFault(d, r, w, f, d.pick(others)))
  } else {
    // Nothing to get wrong: junk the route must shrug off.
    if (d.chance(50)) f.query.push([d.pick(['x', '__proto__', 'a[b]']), queryValue(d.oddText(5))])
    if (d.chance(30)) f.headers['content-type'] = 'application/json'
    if (d.chance(30)) { f.rawBody = d.pick(['{', '[]', '{"a":1}', '['.repeat(10_000)]); f.method = r.method === 'GET' ? 'GET' : r.method }
  }
  const body = f.rawBody ?? (f.body === undefined ? undefined : toJson(f.body))
  // GET with a body: not something the routes take; keep the junk only for the open routes.
  const sendBody = f.method === 'GET' && !isOpenRoute(r) ? undefined : body
  const url = urlOf(r, f)
  const http = f.http || /\/\.\.?(\/|$|\?)/.test(url) || d.chance(8)
  return { method: f.method, url, headers: f.headers, ...(sendBody === undefined ? {} : { body: sendBody }), faults, http }
}
