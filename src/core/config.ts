import { randomBytes } from 'node:crypto'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { Type, type Static, type TSchema } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'

/**
 * Every setting the server reads, as a TypeBox schema: one source for validation, defaults and the
 * `Config` type. Values come from the environment (strings) and are converted before checking.
 */
export const EnvSchema = Type.Object({
  NODE_ENV: Type.Union([Type.Literal('development'), Type.Literal('production'), Type.Literal('test')], { default: 'development' }),
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 3000 }),
  HOST: Type.String({ minLength: 1, default: '127.0.0.1' }),
  DATABASE_URL: Type.Optional(Type.String({ pattern: '^postgres(ql)?://' })),
  DATA_DIR: Type.String({ minLength: 1, default: './data' }),
  REDIS_URL: Type.Optional(Type.String({ pattern: '^rediss?://' })),
  JWT_SECRET: Type.Optional(Type.String({ minLength: 32 })),
  JWT_PUBLIC_KEY: Type.Optional(Type.String({ minLength: 1 })),
  LOG_LEVEL: Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map(l => Type.Literal(l)), { default: 'info' }),
  MAX_FILE_BYTES: Type.Integer({ minimum: 1, maximum: 256 * 1024 * 1024, default: 10 * 1024 * 1024 }),
  ALLOW_REGISTRATION: Type.Boolean({ default: true }),
  PASSWORD_HASH_COST: Type.Integer({ minimum: 10, maximum: 20, default: 14, description: 'scrypt cost of new password hashes, as log2 N (14: N = 16384); each stored hash keeps its own' }),
  SERVE_APP: Type.Boolean({ default: true, description: 'serve the IDE page (dist/app, built by npm run build) at /app/' }),
  CORS_ORIGINS: Type.String({ default: '' }),
  DB_POOL_MAX: Type.Integer({ minimum: 1, maximum: 1000, default: 20 }),
  DB_STATEMENT_TIMEOUT_MS: Type.Integer({ minimum: 0, default: 30_000 }),
  DB_PREPARED_STATEMENTS: Type.Boolean({ default: true, description: 'the hot statements as named prepared statements, parsed and planned once per connection (plugins/app/database.ts)' }),
  DB_TRANSACTION_TIMEOUT_MS: Type.Integer({ minimum: 0, maximum: 3_600_000, default: 60_000, description: 'the longest one piece of work (a transaction) may hold a pooled connection; 0 for no bound' }),
  GROUP_COMMIT: Type.Boolean({ default: true, description: 'writes to one workspace that arrive while a transaction for it is in flight share the next transaction (one lock, one commit), each keeping its own result (docs/architecture.md)' }),
  GROUP_COMMIT_MAX_MEMBERS: Type.Integer({ minimum: 1, maximum: 10_000, default: 64, description: 'requests one group commit may take' }),
  GROUP_COMMIT_MAX_BYTES: Type.Integer({ minimum: 0, maximum: 1024 * 1024 * 1024, default: 8 * 1024 * 1024, description: 'bytes of request bodies one group commit may take (a larger request goes alone)' }),
  STARTUP_TIMEOUT_MS: Type.Integer({ minimum: 0, maximum: 110_000, default: 60_000, description: 'how long the start waits for PostgreSQL and Redis to answer' }),
  CHANGE_RETENTION: Type.String({ pattern: '^(0|[1-9]\\d*(s|m|h|d))$', default: '0', description: 'how long changes are kept: 0 (forever) or e.g. 30d, 12h' }),
  ACTIVITY_RETENTION: Type.String({ pattern: '^(0|[1-9]\\d*(s|m|h|d))$', default: '30d', description: 'how long activity entries are kept: 0 (forever) or e.g. 30d, 12h' }),
  MAX_ENTRIES_PER_REQUEST: Type.Integer({ minimum: 1, maximum: 10_000_000, default: 10_000, description: 'entries one request may create, move, copy, delete or revert' }),
  ARCHIVE_MAX_BYTES: Type.Integer({ minimum: 1024, maximum: 4 * 1024 * 1024 * 1024, default: 64 * 1024 * 1024, description: 'largest archive body an import accepts (as sent: compressed)' }),
  ARCHIVE_MAX_UNCOMPRESSED_BYTES: Type.Integer({ minimum: 1024, maximum: 4 * 1024 * 1024 * 1024, default: 128 * 1024 * 1024, description: 'the bytes of all files of an imported archive together, once decompressed' }),
  ARCHIVE_MAX_RATIO: Type.Integer({ minimum: 1, maximum: 100_000, default: 100, description: 'how many times its compressed size a zip entry, a gzip stream or a whole archive may inflate to' }),
  SESSION_END_POLL_MS: Type.Integer({ minimum: 100, maximum: 60_000, default: 500, description: 'how often each instance reads the sessions ended by logout (their tokens stop within this plus a query)' }),
  REFRESH_REUSE_WINDOW_MS: Type.Integer({ minimum: 0, maximum: 60_000, default: 10_000, description: 'a used refresh token presented again within this gets the same new pair (two tabs refreshing at once)' }),
  MAX_NEW_SESSIONS_PER_WINDOW: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 100, description: 'new session ids one user may start per RATE_LIMIT_WINDOW_MS' }),
  MCP_MAX_RESULT_BYTES: Type.Integer({ minimum: 4096, maximum: 64 * 1024 * 1024, default: 256 * 1024, description: 'largest MCP tool result text; longer ones are cut with a note' }),
  CHAT_LOG_DIR: Type.Optional(Type.String({ minLength: 1 })),
  ACTIVITY_LOG_READS: Type.Boolean({ default: false, description: 'also record reads (file reads, tree listings with cache hit or miss, history, changes, search) and WebSocket messages other than ping in the session activity log' }),
  CACHE_MAX_BYTES: Type.Integer({ minimum: 0, maximum: 64 * 1024 * 1024 * 1024, default: 64 * 1024 * 1024, description: 'in-process read cache; 0 disables it' }),
  CACHE_REDIS: Type.Boolean({ default: true, description: 'use Redis as the second cache layer when REDIS_URL is set' }),
  SEARCH_TIMEOUT_MS: Type.Integer({ minimum: 1, maximum: 600_000, default: 5_000, description: 'time budget of one content search; then it answers what it found, truncated' }),
  SEARCH_CACHE_BYTES: Type.Integer({ minimum: 0, maximum: 64 * 1024 * 1024 * 1024, default: 64 * 1024 * 1024, description: 'in-process cache of decoded file texts for search; 0 disables it' }),
  RETENTION_INTERVAL_MS: Type.Integer({ minimum: 0, maximum: 86_400_000, default: 60_000, description: '0: never run the retention job' }),
  WS_HEARTBEAT_MS: Type.Integer({ minimum: 100, maximum: 3_600_000, default: 30_000 }),
  WS_MAX_PAYLOAD: Type.Integer({ minimum: 1024, maximum: 64 * 1024 * 1024, default: 1024 * 1024 }),
  WS_MAX_BUFFERED_BYTES: Type.Integer({ minimum: 1024, maximum: 1024 * 1024 * 1024, default: 4 * 1024 * 1024 }),
  WS_MESSAGES_PER_SECOND: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 100 }),
  WS_AUTH_TIMEOUT_MS: Type.Integer({ minimum: 100, maximum: 600_000, default: 5_000 }),
  WS_MAX_QUEUED_MESSAGES: Type.Integer({ minimum: 1, maximum: 100_000, default: 100, description: 'messages a socket may have waiting to be handled' }),
  WS_MAX_QUEUED_BYTES: Type.Integer({ minimum: 1024, maximum: 1024 * 1024 * 1024, default: 4 * 1024 * 1024, description: 'bytes of messages a socket may have waiting to be handled' }),
  WS_REPLAY_TIMEOUT_MS: Type.Integer({ minimum: 100, maximum: 3_600_000, default: 30_000, description: 'how long a replay may wait for a client that does not read' }),
  WS_MAX_SOCKETS_PER_USER: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 20 }),
  WS_MAX_CONNECTIONS: Type.Integer({ minimum: 1, maximum: 10_000_000, default: 10_000, description: 'open sockets per instance' }),
  PRESENCE_MAX_BYTES: Type.Integer({ minimum: 64, maximum: 64 * 1024, default: 2048, description: 'largest presence state (presence.set), serialised as JSON' }),
  PRESENCE_UPDATES_PER_SECOND: Type.Integer({ minimum: 1, maximum: 1000, default: 10, description: 'presence.set applied per socket and channel; the excess is coalesced' }),
  // Which X-Forwarded-* senders to believe: 'false', 'true', a hop count, or a comma list of
  // addresses/CIDRs/proxy-addr names (e.g. 'loopback,10.0.0.0/8').
  TRUST_PROXY: Type.String({ pattern: '^\\s*(true|false|\\d+|[\\w:.\\/-]+(\\s*,\\s*[\\w:.\\/-]+)*)\\s*$', default: 'false' }),
  WORKERS: Type.Integer({ minimum: 1, maximum: 256, default: 1 }),
  ADMIN_EMAILS: Type.String({ default: '' }),
  // Unset: on, except under NODE_ENV=test (suites register many users from one address).
  RATE_LIMIT_ENABLED: Type.Optional(Type.Boolean()),
  RATE_LIMIT_MAX: Type.Integer({ minimum: 1, maximum: 10_000_000, default: 100 }),
  RATE_LIMIT_WINDOW_MS: Type.Integer({ minimum: 100, maximum: 86_400_000, default: 60_000 }),
  AUTH_RATE_LIMIT_MAX: Type.Integer({ minimum: 1, maximum: 10_000_000, default: 10 }),
  AUTH_RATE_LIMIT_WINDOW_MS: Type.Integer({ minimum: 100, maximum: 86_400_000, default: 60_000 }),
  RATE_LIMIT_FAIL_OPEN: Type.Boolean({ default: true }),
  RATE_LIMIT_KEY_PREFIX: Type.String({ minLength: 1, maxLength: 200, default: 'wb:rl:' }),
  OVERLOAD_MAX_EVENT_LOOP_DELAY_MS: Type.Integer({ minimum: 0, maximum: 600_000, default: 1_000 }),
  OVERLOAD_MAX_EVENT_LOOP_UTILIZATION: Type.Number({ minimum: 0, maximum: 1, default: 0 }),
  OVERLOAD_MAX_HEAP_USED_BYTES: Type.Integer({ minimum: 0, default: 0 }),
  OVERLOAD_MAX_RSS_BYTES: Type.Integer({ minimum: 0, default: 0 }),
  OVERLOAD_SAMPLE_INTERVAL_MS: Type.Integer({ minimum: 10, maximum: 60_000, default: 1_000 }),
  OVERLOAD_RETRY_AFTER_S: Type.Integer({ minimum: 1, maximum: 3_600, default: 10 })
})
type Env = Static<typeof EnvSchema>

export interface Config extends Omit<Env, 'JWT_SECRET' | 'CORS_ORIGINS'> {
  /** HS256 secret, or undefined when tokens are verified with JWT_PUBLIC_KEY. */
  JWT_SECRET: string | undefined
  CORS_ORIGINS: string[]
  /** CHANGE_RETENTION in milliseconds; 0 keeps changes forever */
  changeRetentionMs: number
  /** ACTIVITY_RETENTION in milliseconds; 0 keeps activity forever */
  activityRetentionMs: number
  isProduction: boolean
}

export class ConfigError extends Error {}

/** Reads and checks the configuration; throws a ConfigError that names the bad variable. */
export function loadConfig (source: Record<string, string | undefined> = process.env): Config {
  const raw: Record<string, unknown> = {}
  for (const key of Object.keys(EnvSchema.properties)) {
    const value = source[key]
    if (value !== undefined && value !== '') raw[key] = value
    // Value.Convert truncates: "1e6" would become 1, "80.5" 80, "true" 1. Integers must be digits.
    const schema: TSchema | undefined = (EnvSchema.properties as Record<string, TSchema>)[key]
    if (schema?.type === 'integer' && value !== undefined && value !== '' && !/^\s*-?\d+\s*$/.test(value)) {
      throw new ConfigError(`invalid configuration: ${key} expected integer (got ${JSON.stringify(value)})`)
    }
  }
  const env = Value.Convert(EnvSchema, Value.Default(EnvSchema, raw))
  const firstError = Value.Errors(EnvSchema, env).First()
  if (firstError !== undefined) {
    const name = firstError.path.replace(/^\//, '')
    throw new ConfigError(`invalid configuration: ${name} ${firstError.message.toLowerCase()} (got ${JSON.stringify(source[name] ?? '')})`)
  }
  const checked = env as Env
  const isProduction = checked.NODE_ENV === 'production'
  if (checked.JWT_SECRET !== undefined && checked.JWT_PUBLIC_KEY !== undefined) {
    throw new ConfigError('invalid configuration: set JWT_SECRET or JWT_PUBLIC_KEY, not both (only one algorithm is accepted)')
  }
  let secret = checked.JWT_SECRET
  if (secret === undefined && checked.JWT_PUBLIC_KEY === undefined) {
    if (isProduction) throw new ConfigError('invalid configuration: JWT_SECRET (or JWT_PUBLIC_KEY) is required when NODE_ENV=production')
    secret = devSecret(checked.DATA_DIR)
  }
  return {
    ...checked,
    DATA_DIR: resolve(checked.DATA_DIR),
    JWT_SECRET: secret,
    CORS_ORIGINS: checked.CORS_ORIGINS.split(',').map(o => o.trim()).filter(o => o !== ''),
    changeRetentionMs: durationMs(checked.CHANGE_RETENTION),
    activityRetentionMs: durationMs(checked.ACTIVITY_RETENTION),
    isProduction
  }
}

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

/** `30d`, `12h`, `90m`, `3600s`, or `0`. */
function durationMs (value: string): number {
  const match = /^(\d+)([smhd])?$/.exec(value)
  return match === null ? 0 : Number(match[1]) * (UNIT_MS[match[2] ?? 's'] ?? 0)
}

/** Outside production a secret is generated once and kept in DATA_DIR, so tokens survive restarts. */
function devSecret (dataDir: string): string {
  const file = join(dataDir, 'jwt-secret')
  try {
    return readFileSync(file, 'utf8').trim()
  } catch {
    mkdirSync(dataDir, { recursive: true })
    const secret = randomBytes(48).toString('base64url')
    writeFileSync(file, secret, { mode: 0o600, flag: 'wx' })
    return secret
  }
}
