import t, { type Test } from 'tap'
import pg from 'pg'
import {
  ROOT, MAX_PATH_BYTES, MAX_SEGMENT_BYTES,
  canonicalPath, pathFromUrl, isWithin, parentOf, nameOf, depthOf, ancestorsOf
} from '../../src/files/paths.js'
import { descendantsPattern } from '../../src/db/queries.js'
import { AppError } from '../../src/core/errors.js'
import { PG_ADMIN_URL } from '../helpers/app.js'

/** Asserts that `fn` throws an AppError 400 INVALID_PATH. */
function invalid (t: Test, fn: () => unknown, label: string): void {
  let thrown: unknown
  let result: unknown
  try {
    result = fn()
  } catch (err) {
    thrown = err
  }
  if (thrown === undefined) {
    t.fail(`${label}: expected INVALID_PATH, got ${JSON.stringify(result)}`)
    return
  }
  t.ok(thrown instanceof AppError, `${label}: throws an AppError`)
  if (thrown instanceof AppError) {
    t.equal(thrown.code, 'INVALID_PATH', `${label}: code`)
    t.equal(thrown.statusCode, 400, `${label}: statusCode`)
  }
}

const bytes = (s: string): number => Buffer.byteLength(s, 'utf8')

/** A segment of exactly `n` UTF-8 bytes made of `ch` (padded with 'a' when `n` is not a multiple). */
function segmentOf (n: number, ch = 'a'): string {
  const w = bytes(ch)
  const s = ch.repeat(Math.floor(n / w)) + 'a'.repeat(n % w)
  if (bytes(s) !== n) throw new Error(`segmentOf(${n}) built ${bytes(s)} bytes`)
  return s
}

/** A valid-segment path of exactly `n` bytes (segments of at most 255 bytes). */
function pathOf (n: number, ch = 'a'): string {
  let out = ''
  let left = n
  while (left > 0) {
    // one '/' plus a segment; never leave a remainder of 1 (that would need an empty segment)
    let take = Math.min(left, 1 + 200)
    if (left - take === 1) take -= 1
    const seg = segmentOf(take - 1, ch)
    out += '/' + seg
    left -= 1 + bytes(seg)
  }
  if (bytes(out) !== n) throw new Error(`pathOf(${n}) built ${bytes(out)} bytes`)
  return out
}

t.test('constants match the contract', async t => {
  t.equal(ROOT, '/')
  t.equal(MAX_SEGMENT_BYTES, 255)
  t.equal(MAX_PATH_BYTES, 1024)
})

t.test('canonicalPath: accepted paths', async t => {
  t.equal(canonicalPath('/'), '/', 'root')
  t.equal(canonicalPath('/src/app.ts'), '/src/app.ts')
  t.equal(canonicalPath('/a'), '/a')
  t.equal(canonicalPath('/.hidden'), '/.hidden', 'leading dot is fine')
  t.equal(canonicalPath('/...'), '/...', 'three dots is a name')
  t.equal(canonicalPath('/a..b/c.'), '/a..b/c.', 'dots inside names')
  t.equal(canonicalPath('/with space/tab-less'), '/with space/tab-less')
  t.equal(canonicalPath('/Case/CASE'), '/Case/CASE', 'case kept')
  t.equal(canonicalPath('/emoji/😀.txt'), '/emoji/😀.txt', 'astral characters')
  t.equal(canonicalPath('/50%_off'), '/50%_off', '% and _ are plain characters')
})

t.test('canonicalPath: NFC normalisation', async t => {
  const nfd = '/src/cafe\u0301.ts'
  const nfc = '/src/caf\u00e9.ts'
  t.not(nfd, nfc, 'inputs differ')
  t.equal(canonicalPath(nfd), nfc, 'NFD becomes NFC')
  t.equal(canonicalPath(nfc), nfc, 'NFC stays')
  t.equal(canonicalPath('/\u212b'), '/\u00c5', 'ANGSTROM SIGN → A WITH RING (singleton)')
  t.equal(canonicalPath('/A\u030a/x'), '/\u00c5/x', 'decomposed Å composes')
  t.equal(canonicalPath(canonicalPath(nfd)), nfc, 'idempotent')
})

t.test('canonicalPath: rejections', async t => {
  invalid(t, () => canonicalPath(''), 'empty')
  invalid(t, () => canonicalPath('src/app.ts'), 'relative')
  invalid(t, () => canonicalPath('a'), 'relative single name')
  invalid(t, () => canonicalPath('./a'), 'relative ./')
  invalid(t, () => canonicalPath(' /a'), 'leading space before /')
  invalid(t, () => canonicalPath('/.'), '. alone')
  invalid(t, () => canonicalPath('/a/./b'), '. segment')
  invalid(t, () => canonicalPath('/a/.'), 'trailing . segment')
  invalid(t, () => canonicalPath('/..'), '.. alone')
  invalid(t, () => canonicalPath('/a/../b'), '.. segment')
  invalid(t, () => canonicalPath('/a/..'), 'trailing .. segment')
  invalid(t, () => canonicalPath('//'), '//')
  invalid(t, () => canonicalPath('//a'), 'leading //')
  invalid(t, () => canonicalPath('/a//b'), 'empty segment')
  invalid(t, () => canonicalPath('/a/'), 'trailing /')
  invalid(t, () => canonicalPath('/a/b/'), 'trailing / deeper')
  invalid(t, () => canonicalPath('/a\\b'), 'backslash')
  invalid(t, () => canonicalPath('\\a'), 'backslash instead of leading /')
  invalid(t, () => canonicalPath('/a\u0000b'), 'NUL')
  invalid(t, () => canonicalPath('/a\u0001'), 'U+0001')
  invalid(t, () => canonicalPath('/a\tb'), 'TAB (U+0009)')
  invalid(t, () => canonicalPath('/a\nb'), 'LF')
  invalid(t, () => canonicalPath('/\u001f'), 'U+001F')
  invalid(t, () => canonicalPath('/a\u007f'), 'U+007F')
  invalid(t, () => canonicalPath('/a\ud800b'), 'lone high surrogate')
  invalid(t, () => canonicalPath('/a\udc00'), 'lone low surrogate')
  invalid(t, () => canonicalPath('/\ude00\ud83d'), 'surrogates in the wrong order')
})

t.test('canonicalPath: segment length in UTF-8 bytes', async t => {
  const ascii255 = segmentOf(255)
  const ascii256 = segmentOf(256)
  t.equal(canonicalPath('/' + ascii255), '/' + ascii255, '255 ASCII bytes ok')
  invalid(t, () => canonicalPath('/' + ascii256), '256 ASCII bytes')
  invalid(t, () => canonicalPath('/ok/' + ascii256 + '/x'), '256-byte segment in the middle')

  const e128 = '\u00e9'.repeat(128) // 256 bytes, 128 UTF-16 units
  t.equal(bytes(e128), 256)
  invalid(t, () => canonicalPath('/' + e128), "'é' × 128 = 256 bytes")
  const e127a = '\u00e9'.repeat(127) + 'a' // 255 bytes
  t.equal(canonicalPath('/' + e127a), '/' + e127a, "'é' × 127 + 'a' = 255 bytes ok")

  const euro85 = '€'.repeat(85) // 255 bytes (3 each)
  t.equal(bytes(euro85), 255)
  t.equal(canonicalPath('/' + euro85), '/' + euro85, '€ × 85 = 255 bytes ok')
  invalid(t, () => canonicalPath('/' + euro85 + 'a'), '€ × 85 + a = 256 bytes')

  const emoji = '😀'.repeat(63) + 'abc' // 4 × 63 + 3 = 255
  t.equal(bytes(emoji), 255)
  t.equal(canonicalPath('/' + emoji), '/' + emoji, '4-byte characters to 255 bytes ok')
  invalid(t, () => canonicalPath('/' + '😀'.repeat(64)), '😀 × 64 = 256 bytes')

  // measured after NFC: NFD é is 3 bytes, NFC é is 2
  const nfdSeg = 'e\u0301'.repeat(127) + 'a' // 382 bytes as typed, 255 after NFC
  t.ok(bytes(nfdSeg) > 255)
  t.equal(canonicalPath('/' + nfdSeg), '/' + e127a, 'byte length is measured after NFC normalisation')
  invalid(t, () => canonicalPath('/' + 'e\u0301'.repeat(128)), 'NFD é × 128 (256 bytes after NFC)')
})

t.test('canonicalPath: whole path length in UTF-8 bytes', async t => {
  const p1024 = pathOf(1024)
  const p1025 = pathOf(1025)
  t.equal(canonicalPath(p1024), p1024, '1024 bytes ok')
  invalid(t, () => canonicalPath(p1025), '1025 bytes')

  const m1024 = pathOf(1024, '\u00e9')
  const m1025 = pathOf(1025, '\u00e9')
  t.ok(m1024.length < 1024, 'multi-byte path is shorter in UTF-16 units than in bytes')
  t.equal(canonicalPath(m1024), m1024, '1024 bytes of é ok')
  invalid(t, () => canonicalPath(m1025), '1025 bytes of é')

  const f1024 = pathOf(1024, '€')
  t.equal(canonicalPath(f1024), f1024, '1024 bytes of € ok')
  invalid(t, () => canonicalPath(pathOf(1025, '€')), '1025 bytes of €')
})

t.test('pathFromUrl', async t => {
  t.equal(pathFromUrl(''), '/', 'empty tail is the root')
  t.equal(pathFromUrl('/'), '/', '/ is the root')
  t.equal(pathFromUrl('/src/app.ts'), '/src/app.ts', 'plain')
  t.equal(pathFromUrl('/src/caf%C3%A9.ts'), '/src/café.ts', 'percent-encoded UTF-8')
  t.equal(pathFromUrl('/src/caf%c3%a9.ts'), '/src/café.ts', 'lowercase hex')
  t.equal(pathFromUrl('/src/cafe%CC%81.ts'), '/src/caf\u00e9.ts', 'encoded NFD becomes NFC')
  t.equal(pathFromUrl('/src/café.ts'), '/src/café.ts', 'raw (unencoded) non-ASCII')
  t.equal(pathFromUrl('/my%20file.txt'), '/my file.txt', '%20 is a space')
  t.equal(pathFromUrl('/a+b'), '/a+b', '+ stays + (not a space)')
  t.equal(pathFromUrl('/50%25_off'), '/50%_off', '%25 is %')
  t.equal(pathFromUrl('/%2E%2E%2E'), '/...', '%2E%2E%2E is the name ...')
  t.equal(pathFromUrl('/%F0%9F%98%80'), '/😀', '4-byte UTF-8')

  invalid(t, () => pathFromUrl('/a%2Fb'), '%2F inside a segment')
  invalid(t, () => pathFromUrl('/a%2fb'), '%2f (lowercase) inside a segment')
  invalid(t, () => pathFromUrl('/%2F'), 'segment that is only %2F')
  invalid(t, () => pathFromUrl('/a/%2Fetc%2Fpasswd'), '%2F hiding a path')
  invalid(t, () => pathFromUrl('/%2e%2e'), '%2e%2e')
  invalid(t, () => pathFromUrl('/a/%2e%2e/b'), '%2e%2e in the middle')
  invalid(t, () => pathFromUrl('/a/%2E'), '%2E')
  invalid(t, () => pathFromUrl('/a/.%2e'), 'mixed .%2e')
  invalid(t, () => pathFromUrl('/a%5Cb'), '%5C (backslash)')
  invalid(t, () => pathFromUrl('/a%00b'), '%00 (NUL)')
  invalid(t, () => pathFromUrl('/a%01'), '%01')
  invalid(t, () => pathFromUrl('/a%1F'), '%1F')
  invalid(t, () => pathFromUrl('/a%7F'), '%7F')
  invalid(t, () => pathFromUrl('/a%0A'), '%0A (LF)')
  invalid(t, () => pathFromUrl('/a%'), 'truncated %')
  invalid(t, () => pathFromUrl('/a%2'), 'truncated %2')
  invalid(t, () => pathFromUrl('/a%zz'), '%zz')
  invalid(t, () => pathFromUrl('/a%E9'), 'Latin-1 %E9 (invalid UTF-8)')
  invalid(t, () => pathFromUrl('/a%C3'), 'truncated UTF-8 sequence')
  invalid(t, () => pathFromUrl('/a%ED%A0%80'), 'encoded surrogate (invalid UTF-8)')
  invalid(t, () => pathFromUrl('/a%C0%AF'), 'overlong encoding of /')
  invalid(t, () => pathFromUrl('/a//b'), 'empty segment')
  invalid(t, () => pathFromUrl('/a/'), 'trailing /')
  invalid(t, () => pathFromUrl('//'), '//')
  invalid(t, () => pathFromUrl('/' + '%C3%A9'.repeat(128)), 'encoded 256-byte segment')
  t.equal(pathFromUrl('/' + '%C3%A9'.repeat(127) + 'a'), '/' + '\u00e9'.repeat(127) + 'a', 'encoded 255-byte segment ok')
})

t.test('isWithin', async t => {
  t.equal(isWithin('/a/b', '/a'), true, 'child')
  t.equal(isWithin('/a/b/c', '/a'), true, 'grandchild')
  t.equal(isWithin('/a', '/a'), true, 'itself')
  t.equal(isWithin('/ab', '/a'), false, 'sibling with a common prefix')
  t.equal(isWithin('/a-b/c', '/a'), false, 'prefix followed by -')
  t.equal(isWithin('/a', '/a/b'), false, 'parent is not within child')
  t.equal(isWithin('/b', '/a'), false, 'unrelated')
  t.equal(isWithin('/x', '/'), true, 'everything is within the root')
  t.equal(isWithin('/', '/'), true, 'root within root')
  t.equal(isWithin('/', '/a'), false, 'root is not within /a')
})

t.test('descendantsPattern', async t => {
  t.equal(descendantsPattern('/'), '/%', 'root')
  t.equal(descendantsPattern('/a'), '/a/%')
  t.equal(descendantsPattern('/a/b'), '/a/b/%')
  t.equal(descendantsPattern('/50%'), '/50\\%/%', '% escaped')
  t.equal(descendantsPattern('/a_b'), '/a\\_b/%', '_ escaped')
  t.equal(descendantsPattern('/a\\b'), '/a\\\\b/%', '\\ escaped')
  t.equal(descendantsPattern('/%_\\'), '/\\%\\_\\\\/%', 'all three together')

  // the patterns as PostgreSQL reads them (LIKE's default escape is \)
  const client = new pg.Client({ connectionString: PG_ADMIN_URL })
  await client.connect()
  t.teardown(() => client.end())
  const like = async (value: string, dir: string): Promise<boolean> => {
    const res = await client.query<{ m: boolean }>('SELECT $1::text LIKE $2::text AS m', [value, descendantsPattern(dir)])
    const row = res.rows[0]
    if (row === undefined) throw new Error('no row')
    return row.m
  }
  t.equal(await like('/50%_off/x', '/50%_off'), true, 'real descendant matches')
  t.equal(await like('/50%_off/x/y', '/50%_off'), true, 'deep descendant matches')
  t.equal(await like('/50%_off', '/50%_off'), false, 'the directory itself does not match')
  t.equal(await like('/50XYoff/x', '/50%_off'), false, '% is literal')
  t.equal(await like('/50%Xoff/x', '/50%_off'), false, '_ is literal')
  t.equal(await like('/50%_offer/x', '/50%_off'), false, 'prefix sibling does not match')
  t.equal(await like('/a\\b/x', '/a\\b'), true, 'backslash literal matches')
  t.equal(await like('/ab/x', '/a\\b'), false, 'backslash is not an escape of b')
  t.equal(await like('/anything', '/'), true, 'root pattern')
  t.equal(await like('/src/a.ts', '/src'), true)
  t.equal(await like('/srcx/a.ts', '/src'), false)
})

t.test('parentOf, nameOf, depthOf, ancestorsOf', async t => {
  t.equal(parentOf('/a/b/c.ts'), '/a/b')
  t.equal(parentOf('/a/b'), '/a')
  t.equal(parentOf('/a'), '/', 'top-level entry → root')
  t.equal(parentOf('/'), '/', 'root is its own parent')

  t.equal(nameOf('/a/b/c.ts'), 'c.ts')
  t.equal(nameOf('/a'), 'a')
  t.equal(nameOf('/café/é.txt'), 'é.txt')
  t.equal(nameOf('/'), '', 'root has an empty name')

  t.equal(depthOf('/'), 0, 'root')
  t.equal(depthOf('/a'), 1)
  t.equal(depthOf('/a/b'), 2)
  t.equal(depthOf('/a/b/c.ts'), 3)

  t.same(ancestorsOf('/a/b/c.ts'), ['/a', '/a/b'], 'outermost first, excludes root and self')
  t.same(ancestorsOf('/a/b'), ['/a'])
  t.same(ancestorsOf('/a'), [], 'top-level: none')
  t.same(ancestorsOf('/'), [], 'root: none')
  t.same(ancestorsOf('/x/y/z/w'), ['/x', '/x/y', '/x/y/z'])
})
