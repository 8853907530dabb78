import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import t, { type Test } from 'tap'
import { ConfigError, loadConfig, type Config } from '../../src/core/config.js'

const SECRET = 'a-secret-that-is-at-least-32-characters-long'

function tempDir (t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'wb-config-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  return dir
}

/** Runs loadConfig and returns the ConfigError it throws (failing the test when it does not). */
function configError (t: Test, env: Record<string, string | undefined>): ConfigError {
  try {
    const config = loadConfig(env)
    t.fail(`expected a ConfigError, got ${JSON.stringify(config)}`)
  } catch (err) {
    t.type(err, ConfigError)
    if (err instanceof ConfigError) return err
  }
  return new ConfigError('(none)')
}

t.test('defaults', async t => {
  const config: Config = loadConfig({ JWT_SECRET: SECRET })
  t.equal(config.NODE_ENV, 'development')
  t.equal(config.PORT, 3000)
  t.equal(config.HOST, '127.0.0.1')
  t.equal(config.DATABASE_URL, undefined)
  t.equal(config.REDIS_URL, undefined)
  t.equal(config.DATA_DIR, resolve('./data'), 'DATA_DIR is made absolute')
  t.equal(config.JWT_SECRET, SECRET)
  t.equal(config.JWT_PUBLIC_KEY, undefined)
  t.equal(config.LOG_LEVEL, 'info')
  t.equal(config.MAX_FILE_BYTES, 10 * 1024 * 1024)
  t.equal(config.ALLOW_REGISTRATION, true)
  t.equal(config.PASSWORD_HASH_COST, 14)
  t.strictSame(config.CORS_ORIGINS, [])
  t.equal(config.DB_POOL_MAX, 20)
  t.equal(config.DB_STATEMENT_TIMEOUT_MS, 30_000)
  t.equal(config.changeRetentionMs, 0)
  t.equal(config.isProduction, false)
})

t.test('values are converted from strings', async t => {
  const dir = tempDir(t)
  const config = loadConfig({
    NODE_ENV: 'production',
    PORT: '8080',
    HOST: '0.0.0.0',
    DATABASE_URL: 'postgres://u@db:5432/wb',
    REDIS_URL: 'redis://cache:6379',
    DATA_DIR: dir,
    JWT_SECRET: SECRET,
    LOG_LEVEL: 'warn',
    MAX_FILE_BYTES: '1024',
    ALLOW_REGISTRATION: 'false',
    CORS_ORIGINS: ' https://a.example , https://b.example,, ',
    DB_POOL_MAX: '5',
    DB_STATEMENT_TIMEOUT_MS: '0',
    CHANGE_RETENTION: '7d'
  })
  t.equal(config.PORT, 8080)
  t.equal(config.HOST, '0.0.0.0')
  t.equal(config.DATABASE_URL, 'postgres://u@db:5432/wb')
  t.equal(config.REDIS_URL, 'redis://cache:6379')
  t.equal(config.DATA_DIR, dir)
  t.equal(config.LOG_LEVEL, 'warn')
  t.equal(config.MAX_FILE_BYTES, 1024)
  t.equal(config.ALLOW_REGISTRATION, false)
  t.strictSame(config.CORS_ORIGINS, ['https://a.example', 'https://b.example'])
  t.equal(config.DB_POOL_MAX, 5)
  t.equal(config.DB_STATEMENT_TIMEOUT_MS, 0)
  t.equal(config.changeRetentionMs, 7 * 86_400_000)
  t.equal(config.isProduction, true)
  t.equal(loadConfig({ JWT_SECRET: SECRET, ALLOW_REGISTRATION: 'true' }).ALLOW_REGISTRATION, true)
  t.equal(loadConfig({ JWT_SECRET: SECRET, PASSWORD_HASH_COST: '10' }).PASSWORD_HASH_COST, 10, 'the lowest cost accepted')
  t.equal(loadConfig({ JWT_SECRET: SECRET, PASSWORD_HASH_COST: '20' }).PASSWORD_HASH_COST, 20, 'the highest')
})

t.test('empty strings count as unset', async t => {
  const config = loadConfig({ JWT_SECRET: SECRET, PORT: '', JWT_PUBLIC_KEY: '', DATABASE_URL: '' })
  t.equal(config.PORT, 3000)
  t.equal(config.JWT_PUBLIC_KEY, undefined)
  t.equal(config.DATABASE_URL, undefined)
})

t.test('bad values name the variable', async t => {
  const cases: Array<[Record<string, string>, string]> = [
    [{ PORT: 'abc' }, 'PORT'],
    [{ PORT: '70000' }, 'PORT'],
    [{ PORT: '80.5' }, 'PORT'],
    [{ PORT: 'true' }, 'PORT'],
    [{ PORT: '0x10' }, 'PORT'],
    [{ MAX_FILE_BYTES: '1e6' }, 'MAX_FILE_BYTES'],
    [{ DB_STATEMENT_TIMEOUT_MS: '1.5' }, 'DB_STATEMENT_TIMEOUT_MS'],
    [{ CHANGE_RETENTION: '-1' }, 'CHANGE_RETENTION'], [{ CHANGE_RETENTION: '30' }, 'CHANGE_RETENTION'],
    [{ NODE_ENV: 'staging' }, 'NODE_ENV'],
    [{ LOG_LEVEL: 'verbose' }, 'LOG_LEVEL'],
    [{ DATABASE_URL: 'mysql://db/wb' }, 'DATABASE_URL'],
    [{ REDIS_URL: 'http://cache' }, 'REDIS_URL'],
    [{ MAX_FILE_BYTES: '0' }, 'MAX_FILE_BYTES'],
    [{ ALLOW_REGISTRATION: 'maybe' }, 'ALLOW_REGISTRATION'],
    [{ DB_POOL_MAX: '0' }, 'DB_POOL_MAX'],
    [{ PASSWORD_HASH_COST: '9' }, 'PASSWORD_HASH_COST'], [{ PASSWORD_HASH_COST: '21' }, 'PASSWORD_HASH_COST']
  ]
  for (const [env, name] of cases) {
    const err = configError(t, { JWT_SECRET: SECRET, ...env })
    t.match(err.message, new RegExp(`\\b${name}\\b`), `${JSON.stringify(env)} names ${name}: ${err.message}`)
    const value = Object.values(env)[0] ?? ''
    t.ok(err.message.includes(JSON.stringify(value)), `and shows the bad value: ${err.message}`)
  }
})

t.test('production needs JWT_SECRET or JWT_PUBLIC_KEY', async t => {
  const dir = tempDir(t)
  const err = configError(t, { NODE_ENV: 'production', DATA_DIR: dir })
  t.match(err.message, /JWT_SECRET/)
  t.match(err.message, /production/)
  t.throws(() => readFileSync(join(dir, 'jwt-secret')), 'no secret file was generated')
  t.equal(loadConfig({ NODE_ENV: 'production', JWT_SECRET: SECRET }).JWT_SECRET, SECRET)
  const withKey = loadConfig({ NODE_ENV: 'production', JWT_PUBLIC_KEY: 'a key' })
  t.equal(withKey.JWT_SECRET, undefined, 'no secret in public-key mode')
  t.equal(withKey.JWT_PUBLIC_KEY, 'a key')
})

t.test('JWT_SECRET shorter than 32 characters is rejected', async t => {
  const err = configError(t, { JWT_SECRET: 'x'.repeat(31) })
  t.match(err.message, /\bJWT_SECRET\b/)
  t.equal(loadConfig({ JWT_SECRET: 'x'.repeat(32) }).JWT_SECRET, 'x'.repeat(32), '32 is enough')
})

t.test('JWT_SECRET and JWT_PUBLIC_KEY together are rejected', async t => {
  const err = configError(t, { JWT_SECRET: SECRET, JWT_PUBLIC_KEY: 'a key' })
  t.match(err.message, /JWT_SECRET/)
  t.match(err.message, /JWT_PUBLIC_KEY/)
  configError(t, { NODE_ENV: 'production', JWT_SECRET: SECRET, JWT_PUBLIC_KEY: 'a key' })
})

t.test('outside production a secret is generated once into DATA_DIR and reused', async t => {
  const dir = join(tempDir(t), 'nested', 'data')
  const first = loadConfig({ NODE_ENV: 'development', DATA_DIR: dir })
  t.type(first.JWT_SECRET, 'string')
  const secret = first.JWT_SECRET ?? ''
  t.ok(secret.length >= 32, 'long enough for HS256')
  const file = join(dir, 'jwt-secret')
  t.equal(readFileSync(file, 'utf8'), secret, 'written to DATA_DIR/jwt-secret')
  t.equal(statSync(file).mode & 0o777, 0o600, 'readable by the owner only')

  t.equal(loadConfig({ NODE_ENV: 'development', DATA_DIR: dir }).JWT_SECRET, secret, 'reused')
  t.equal(loadConfig({ NODE_ENV: 'test', DATA_DIR: dir }).JWT_SECRET, secret, 'reused in test too')

  const other = loadConfig({ NODE_ENV: 'development', DATA_DIR: tempDir(t) })
  t.not(other.JWT_SECRET, secret, 'each DATA_DIR gets its own random secret')

  // an explicit secret wins and the file is left alone
  t.equal(loadConfig({ DATA_DIR: dir, JWT_SECRET: SECRET }).JWT_SECRET, SECRET)
  t.equal(readFileSync(file, 'utf8'), secret)

  // a public key means no secret at all, and no file
  const keyDir = tempDir(t)
  t.equal(loadConfig({ DATA_DIR: keyDir, JWT_PUBLIC_KEY: 'a key' }).JWT_SECRET, undefined)
  t.throws(() => readFileSync(join(keyDir, 'jwt-secret')))
})

t.test('a stored secret is read back trimmed', async t => {
  const dir = tempDir(t)
  writeFileSync(join(dir, 'jwt-secret'), `${SECRET}\n`)
  t.equal(loadConfig({ DATA_DIR: dir }).JWT_SECRET, SECRET)
})
