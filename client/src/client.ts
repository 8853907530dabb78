import { ApiError, apiErrorFrom, NETWORK_ERROR } from './errors.js'
import { newId } from './ids.js'
import { Live, type LiveOptions, type WebSocketConstructor } from './live.js'
import { routeUrl, ROUTES, type RouteName } from './routes.js'
import type {
  ActivityPage, ActivityQuery, AuthResult, BatchResult, ChangesQuery, ChangesResult, CreateSnapshotBody, Credentials, DeleteResult, Entry, FileMeta, ForkBody, Snapshot, SnapshotList,
  HistoryQuery, HistoryResult, Member, MemberList, Operation, OperationResult, PutMemberBody, RevertBody, RevertResult,
  FindQuery, FindResult, SearchBody, SearchResult, SessionList, Stats, TextEdit, TreeQuery, TreeResult, User, Workspace, WorkspaceList, WriteBody, WriteResult
} from './types.js'

/** What the SDK keeps to call the API as a user. Persist it (e.g. in localStorage) through `onTokens`. */
export interface TokenSet {
  accessToken: string
  refreshToken: string
  /** the session the tokens belong to */
  sessionId: string
  /** when the access token expires (ms since the epoch), when known: it is refreshed a little before */
  expiresAt?: number
}

export interface ClientOptions {
  /** the server, e.g. `https://api.example.com` (no trailing `/v1`) */
  baseUrl: string
  /** defaults to the global `fetch` */
  fetch?: typeof fetch
  /** defaults to the global `WebSocket`; Node 20 has none: pass `ws`'s (`import WebSocket from 'ws'`) */
  WebSocket?: WebSocketConstructor
  /** tokens from an earlier login (e.g. read from storage) */
  tokens?: TokenSet | null
  /** called whenever the tokens change (login, refresh, logout; `null` once they are gone) */
  onTokens?: (tokens: TokenSet | null) => void
  /** sent as `X-Session-Id` (and in the socket's `auth`); default: the tokens' session */
  sessionId?: string
  /** how many times a request is retried after no answer, 503 or 429 (default 3); writes keep their idempotency key */
  retries?: number
  /** the first retry's delay (default 200 ms), doubled each time, with jitter */
  retryDelayMs?: number
  /** a request without an answer after this is given up (default 30 s) and retried */
  requestTimeoutMs?: number
  /** refresh this long before the access token's known expiry (default 30 s) */
  refreshLeewayMs?: number
  /** the live connection's settings */
  live?: LiveOptions
}

/** What a mutation may carry besides its body. */
export interface WriteOptions {
  /** `If-Match`: the etag the entry must still have (412 `PRECONDITION_FAILED` otherwise) */
  ifMatch?: string
  /** `Idempotency-Key`; by default a fresh UUID per call, kept across its retries. It is the change's `opId`. */
  idempotencyKey?: string
  /** `X-Session-Id` for this call */
  sessionId?: string
}

export interface ReadOptions {
  /** the entry as it was right after this revision */
  revision?: number
  /** a ranged read: `A-B`, `A-` or `-N` */
  lines?: string
}

/** A file or directory read: the entry plus what the answer's headers said. */
export type FileRead = Entry & {
  /** the workspace revision it was read at (`X-Revision`): subscribe with `since` = it */
  readRevision: number
  /** the `ETag` header, for `ifNoneMatch` */
  httpEtag: string
}

export interface RawRead {
  bytes: Uint8Array
  mimeType: string | null
  httpEtag: string
  readRevision: number
  /** a ranged read's `X-Lines` and `X-Total-Lines` */
  lines?: { start: number, end: number }
  totalLines?: number
}

interface CallOptions {
  params?: Record<string, string>
  query?: Record<string, string | number | boolean | undefined>
  body?: unknown
  headers?: Record<string, string | undefined>
  /** send the access token (default true) */
  auth?: boolean
  /** mutations: an idempotency key is sent, so retries are safe */
  write?: WriteOptions
  /** answer statuses that are not errors besides 2xx (304) */
  accept?: number[]
  /** may be sent again after no answer (GETs and writes with their key are; refresh and logout too) */
  retrySafe?: boolean
}

interface Answer { status: number, headers: Headers, body: unknown, bytes?: Uint8Array }

const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

/**
 * The typed client of the Workbench API: every REST route as a method, tokens refreshed on their
 * own (one refresh at a time however many calls need it), writes retried with their idempotency
 * key, and `live`, the one WebSocket of this client.
 */
export class WorkbenchClient {
  readonly baseUrl: string
  readonly live: Live
  readonly #fetch: typeof fetch
  readonly #options: ClientOptions
  #tokens: TokenSet | null
  #refreshing: Promise<TokenSet> | null = null
  /** the idempotency keys (opIds) of this client's recent writes, so their echoes are recognised */
  readonly #ownOps = new Set<string>()
  /** how many token refreshes this client has asked the server for */
  refreshCount = 0
  #tokenListeners = new Set<(tokens: TokenSet | null) => void>()

  constructor (options: ClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '')
    this.#options = options
    this.#fetch = options.fetch ?? globalThis.fetch.bind(globalThis)
    this.#tokens = options.tokens ?? null
    this.live = new Live(this, options.WebSocket, options.live ?? {})
  }

  // ---- tokens ------------------------------------------------------------------------------

  get tokens (): TokenSet | null { return this.#tokens }

  /** The session id this client's calls are made in. */
  get sessionId (): string | undefined { return this.#options.sessionId ?? this.#tokens?.sessionId }

  /** Sets the tokens (e.g. another tab refreshed them and stored them): the socket re-authenticates with them. */
  setTokens (tokens: TokenSet | null): void {
    this.#tokens = tokens
    this.#options.onTokens?.(tokens)
    for (const listener of this.#tokenListeners) listener(tokens)
  }

  /** Called with the new tokens whenever they change. Returns the unsubscribe function. */
  onTokens (listener: (tokens: TokenSet | null) => void): () => void {
    this.#tokenListeners.add(listener)
    return () => { this.#tokenListeners.delete(listener) }
  }

  #fromAuth (result: AuthResult): TokenSet {
    return { accessToken: result.accessToken, refreshToken: result.refreshToken, sessionId: result.sessionId, expiresAt: Date.now() + result.expiresIn * 1000 }
  }

  /**
   * A fresh token pair, asked for once however many callers want one at the same time: they all
   * get the same promise. The server rotates the refresh token; a second client (another tab)
   * presenting the same one within the reuse window gets the same pair back.
   */
  async refresh (): Promise<TokenSet> {
    if (this.#refreshing !== null) return await this.#refreshing
    const current = this.#tokens
    if (current === null) throw new ApiError(401, 'UNAUTHENTICATED', 'not logged in')
    const refreshing = (async () => {
      try {
        this.refreshCount++
        const { body } = await this.#send('auth.refresh', { auth: false, body: { refreshToken: current.refreshToken }, retrySafe: true })
        const tokens = this.#fromAuth(body as AuthResult)
        // Logged out (or given other tokens) meanwhile: those win.
        if (this.#tokens === current) this.setTokens(tokens)
        return tokens
      } catch (err) {
        if (err instanceof ApiError && err.status === 401 && this.#tokens === current) this.setTokens(null)
        throw err
      } finally {
        this.#refreshing = null
      }
    })()
    this.#refreshing = refreshing
    return await refreshing
  }

  /**
   * The access token to send: waits for a refresh in flight, and refreshes first when the
   * token is known to expire within the leeway.
   */
  async accessToken (): Promise<string> {
    if (this.#refreshing !== null) await this.#refreshing.catch(() => {})
    const tokens = this.#tokens
    if (tokens === null) throw new ApiError(401, 'UNAUTHENTICATED', 'not logged in')
    if (tokens.expiresAt !== undefined && tokens.expiresAt - Date.now() < (this.#options.refreshLeewayMs ?? 30_000)) {
      return (await this.refresh()).accessToken
    }
    return tokens.accessToken
  }

  /** After `used` was refused as expired: refresh, unless someone already did. */
  async tokenRefused (used: string): Promise<void> {
    if (this.#refreshing !== null) {
      await this.#refreshing
      return
    }
    if (this.#tokens !== null && this.#tokens.accessToken !== used) return
    await this.refresh()
  }

  // ---- own writes ---------------------------------------------------------------------------

  /** Whether a change's `opId` is the idempotency key of one of this client's writes (its echo). */
  isOwnOp (opId: string | null | undefined): boolean {
    return opId !== null && opId !== undefined && this.#ownOps.has(opId)
  }

  /** Marks an opId as this client's own (writes do it themselves). */
  rememberOp (opId: string): void {
    this.#ownOps.add(opId)
    if (this.#ownOps.size > 10_000) {
      const oldest = this.#ownOps.values().next().value
      if (oldest !== undefined) this.#ownOps.delete(oldest)
    }
  }

  // ---- the transport ------------------------------------------------------------------------

  /**
   * One call: the access token (refreshed once on 401 `TOKEN_EXPIRED`), retries after no answer,
   * 503 or 429 with backoff and jitter (reads always; writes with their idempotency key, which
   * makes the retry safe), and the error answer as an ApiError.
   */
  async #send (route: RouteName, opts: CallOptions = {}): Promise<Answer> {
    const [method] = ROUTES[route]
    let url = this.baseUrl + routeUrl(route, opts.params)
    const query = Object.entries(opts.query ?? {}).filter((e): e is [string, string | number | boolean] => e[1] !== undefined)
    if (query.length > 0) url += '?' + new URLSearchParams(query.map(([k, v]): [string, string] => [k, String(v)])).toString()
    const headers: Record<string, string> = {}
    for (const [k, v] of Object.entries(opts.headers ?? {})) if (v !== undefined) headers[k] = v
    if (opts.body !== undefined) headers['content-type'] = 'application/json'
    if (opts.write !== undefined) {
      const key = opts.write.idempotencyKey ?? newId()
      headers['idempotency-key'] = key
      this.rememberOp(key)
      if (opts.write.ifMatch !== undefined) headers['if-match'] = opts.write.ifMatch
    }
    const session = opts.write?.sessionId ?? this.#options.sessionId
    if (session !== undefined && opts.auth !== false) headers['x-session-id'] = session
    const body = opts.body === undefined ? undefined : JSON.stringify(opts.body)
    const retries = this.#options.retries ?? 3
    // A request that got no answer may have been applied: send it again only when that is harmless.
    const safe = method === 'GET' || opts.write !== undefined || opts.retrySafe === true
    let refreshed = false
    for (let attempt = 0; ; attempt++) {
      let token: string | undefined
      if (opts.auth !== false) {
        token = await this.accessToken()
        headers.authorization = `Bearer ${token}`
      }
      let res: Response
      try {
        res = await this.#fetch(url, { method, headers, ...(body === undefined ? {} : { body }), signal: AbortSignal.timeout(this.#options.requestTimeoutMs ?? 30_000) })
      } catch (cause) {
        if (safe && attempt < retries) {
          await this.#backoff(attempt)
          continue
        }
        throw new ApiError(0, NETWORK_ERROR, `${method} ${url}: no answer (${cause instanceof Error ? cause.message : String(cause)})`, undefined, undefined, { cause })
      }
      const type = res.headers.get('content-type') ?? ''
      const raw = new Uint8Array(await res.arrayBuffer())
      const text = type.includes('json') || res.status >= 400 ? new TextDecoder().decode(raw) : ''
      let parsed: unknown = null
      if (text !== '') {
        try {
          parsed = JSON.parse(text)
        } catch {
          parsed = text
        }
      }
      if (res.ok || opts.accept?.includes(res.status) === true) {
        return { status: res.status, headers: res.headers, body: type.includes('json') ? parsed : new TextDecoder().decode(raw), bytes: raw }
      }
      const retryAfter = res.headers.has('retry-after') ? Number(res.headers.get('retry-after')) : undefined
      const error = apiErrorFrom(res.status, parsed, retryAfter)
      if (res.status === 401 && error.code === 'TOKEN_EXPIRED' && token !== undefined && !refreshed) {
        refreshed = true
        await this.tokenRefused(token)
        attempt--
        continue
      }
      if ((res.status === 503 || res.status === 429) && attempt < retries) {
        const wait = retryAfter !== undefined && Number.isFinite(retryAfter) ? retryAfter * 1000 : 0
        if (wait <= 10_000) {
          await this.#backoff(attempt, wait)
          continue
        }
      }
      throw error
    }
  }

  async #backoff (attempt: number, atLeast = 0): Promise<void> {
    const base = (this.#options.retryDelayMs ?? 200) * 2 ** attempt
    await sleep(Math.max(atLeast, base / 2 + Math.random() * base / 2))
  }

  async #json<T> (route: RouteName, opts: CallOptions = {}): Promise<T> {
    return (await this.#send(route, opts)).body as T
  }

  // ---- operations routes --------------------------------------------------------------------

  /** `GET /health` */
  async health (): Promise<{ status: string }> { return await this.#json('health', { auth: false }) }
  /** `GET /ready` */
  async ready (): Promise<{ status: string }> { return await this.#json('ready', { auth: false }) }
  /** `GET /v1/stats` (the `admin` permission) */
  async stats (): Promise<Stats> { return await this.#json('stats') }

  // ---- auth ---------------------------------------------------------------------------------

  readonly auth = {
    /** `POST /v1/auth/register`: creates the account and logs in */
    register: async (credentials: Credentials): Promise<AuthResult> => await this.#login('auth.register', credentials),
    /** `POST /v1/auth/login` */
    login: async (credentials: Credentials): Promise<AuthResult> => await this.#login('auth.login', credentials),
    /** `POST /v1/auth/refresh`: a new pair now (calls refresh on their own when needed) */
    refresh: async (): Promise<TokenSet> => await this.refresh(),
    /** `POST /v1/auth/logout`: ends the session everywhere, closes the socket and forgets the tokens */
    logout: async (): Promise<void> => {
      const tokens = this.#tokens
      this.live.close()
      this.setTokens(null)
      if (tokens !== null) await this.#send('auth.logout', { auth: false, body: { refreshToken: tokens.refreshToken }, retrySafe: true })
    }
  }

  async #login (route: 'auth.register' | 'auth.login', credentials: Credentials): Promise<AuthResult> {
    const result = await this.#json<AuthResult>(route, { auth: false, body: credentials })
    this.setTokens(this.#fromAuth(result))
    return result
  }

  /** `GET /v1/me` */
  async me (): Promise<User> { return await this.#json('me') }

  // ---- workspaces and members ---------------------------------------------------------------

  readonly workspaces = {
    /** `GET /v1/workspaces`, oldest first */
    list: async (): Promise<Workspace[]> => (await this.#json<WorkspaceList>('workspaces.list')).items,
    /** `POST /v1/workspaces`: the caller becomes its owner */
    create: async (name: string): Promise<Workspace> => await this.#json('workspaces.create', { body: { name } }),
    /** `GET /v1/workspaces/{id}`: with the caller's role and the current revision */
    get: async (id: string): Promise<Workspace> => await this.#json('workspaces.get', { params: { id } }),
    /** `DELETE /v1/workspaces/{id}` (owner) */
    delete: async (id: string): Promise<void> => { await this.#send('workspaces.delete', { params: { id } }) },
    /** `POST /v1/workspaces/{id}/fork` (any member): a new workspace, the caller's, with the tree at `revision` (default: the head) */
    fork: async (id: string, body: ForkBody): Promise<Workspace> => await this.#json('workspaces.fork', { params: { id }, body })
  }

  readonly snapshots = {
    /** `GET /v1/workspaces/{id}/snapshots`, by name */
    list: async (workspaceId: string): Promise<Snapshot[]> => (await this.#json<SnapshotList>('snapshots.list', { params: { id: workspaceId } })).items,
    /** `POST /v1/workspaces/{id}/snapshots` (editor): names `revision` (default: the head); read it with `files.read(…, { revision })` */
    create: async (workspaceId: string, body: CreateSnapshotBody): Promise<Snapshot> => await this.#json('snapshots.create', { params: { id: workspaceId }, body }),
    /** `GET /v1/workspaces/{id}/snapshots/{name}` */
    get: async (workspaceId: string, name: string): Promise<Snapshot> => await this.#json('snapshots.get', { params: { id: workspaceId, name } }),
    /** `DELETE /v1/workspaces/{id}/snapshots/{name}` (editor) */
    delete: async (workspaceId: string, name: string): Promise<void> => { await this.#send('snapshots.delete', { params: { id: workspaceId, name } }) }
  }

  readonly members = {
    /** `GET /v1/workspaces/{id}/members`, sorted by email */
    list: async (workspaceId: string): Promise<Member[]> => (await this.#json<MemberList>('members.list', { params: { id: workspaceId } })).items,
    /** `PUT /v1/workspaces/{id}/members` (owner): adds a member or changes a role */
    put: async (workspaceId: string, member: PutMemberBody): Promise<Member> => await this.#json('members.put', { params: { id: workspaceId }, body: member }),
    /** `DELETE /v1/workspaces/{id}/members/{userId}` (owner) */
    remove: async (workspaceId: string, userId: string): Promise<void> => { await this.#send('members.remove', { params: { id: workspaceId, userId } }) }
  }

  // ---- files --------------------------------------------------------------------------------

  readonly files = {
    /**
     * `GET …/files/{path}`: a file (meta, content, encoding) or a directory (meta, children).
     * With `ifNoneMatch` (a previous `httpEtag`), `null` when it has not changed (304).
     */
    read: (async (workspaceId: string, path: string, opts: ReadOptions & { ifNoneMatch?: string } = {}): Promise<FileRead | null> => {
      const res = await this.#send('files.read', {
        params: { id: workspaceId, path },
        query: { revision: opts.revision, lines: opts.lines },
        headers: { 'if-none-match': opts.ifNoneMatch },
        accept: [304]
      })
      if (res.status === 304) return null
      return { ...(res.body as Entry), readRevision: Number(res.headers.get('x-revision')), httpEtag: res.headers.get('etag') ?? '' }
    }) as {
      (workspaceId: string, path: string, opts?: ReadOptions): Promise<FileRead>
      (workspaceId: string, path: string, opts: ReadOptions & { ifNoneMatch: string }): Promise<FileRead | null>
    },
    /** `GET …/files/{path}?format=raw`: the bytes, with the headers that describe them */
    readRaw: async (workspaceId: string, path: string, opts: ReadOptions = {}): Promise<RawRead> => {
      const res = await this.#send('files.read', { params: { id: workspaceId, path }, query: { format: 'raw', revision: opts.revision, lines: opts.lines } })
      const range = /^(\d+)-(\d+)$/.exec(res.headers.get('x-lines') ?? '')
      const total = res.headers.get('x-total-lines')
      return {
        bytes: res.bytes ?? new Uint8Array(),
        mimeType: res.headers.get('content-type'),
        httpEtag: res.headers.get('etag') ?? '',
        readRevision: Number(res.headers.get('x-revision')),
        ...(range === null ? {} : { lines: { start: Number(range[1]), end: Number(range[2]) } }),
        ...(total === null ? {} : { totalLines: Number(total) })
      }
    },
    /** `PUT …/files/{path}`: creates (with missing parents) or replaces a file. `ifNoneMatch: '*'` creates only. */
    write: async (workspaceId: string, path: string, body: WriteBody, opts: WriteOptions & { ifNoneMatch?: '*' } = {}): Promise<WriteResult> =>
      await this.#json('files.write', { params: { id: workspaceId, path }, body, write: opts, headers: { 'if-none-match': opts.ifNoneMatch } }),
    /** `DELETE …/files/{path}`: a file, or a directory and everything under it */
    delete: async (workspaceId: string, path: string, opts: WriteOptions = {}): Promise<DeleteResult> =>
      await this.#json('files.delete', { params: { id: workspaceId, path }, write: opts }),
    /** `GET …/tree`: one page of entries under `path` */
    tree: async (workspaceId: string, query: TreeQuery = {}): Promise<TreeResult> =>
      await this.#json('files.tree', { params: { id: workspaceId }, query: { ...query } }),
    /**
     * Every entry under `path` (default `/`, every depth), page after page. `revision` is the
     * first page's; later pages read current data, so under concurrent writes the pages may be
     * from later revisions (`WorkspaceMirror` checks and reads again).
     */
    treeAll: async (workspaceId: string, query: Omit<TreeQuery, 'cursor'> = {}): Promise<{ revision: number, entries: FileMeta[], pages: number }> => {
      const entries: FileMeta[] = []
      let page = await this.files.tree(workspaceId, { depth: 0, limit: 5000, ...query })
      const revision = page.revision
      entries.push(...page.entries)
      let pages = 1
      while (page.nextCursor !== null) {
        page = await this.files.tree(workspaceId, { depth: 0, limit: 5000, ...query, cursor: page.nextCursor })
        entries.push(...page.entries)
        pages++
      }
      return { revision, entries, pages }
    },
    /** `GET …/changes`: the change feed after `since` */
    changes: async (workspaceId: string, query: ChangesQuery = {}): Promise<ChangesResult> =>
      await this.#json('files.changes', { params: { id: workspaceId }, query: { ...query } }),
    /** `GET …/history/{path}`: the changes that touched the path, newest first, across moves */
    history: async (workspaceId: string, path: string, query: HistoryQuery = {}): Promise<HistoryResult> =>
      await this.#json('files.history', { params: { id: workspaceId, path }, query: { ...query } })
  }

  // ---- search -------------------------------------------------------------------------------

  /** `POST …/search`: find in files (ripgrep semantics), at the head or a `revision` */
  async search (workspaceId: string, body: SearchBody): Promise<SearchResult> {
    return await this.#json('search', { params: { id: workspaceId }, body })
  }

  /** `GET …/find?q=`: the fuzzy file finder, best first */
  async find (workspaceId: string, query: FindQuery): Promise<FindResult> {
    return await this.#json('find', { params: { id: workspaceId }, query: { ...query } })
  }

  // ---- operations ---------------------------------------------------------------------------

  readonly operations = {
    /** `POST …/operations`: one operation (create, update, delete, move, copy, mkdir, edit) */
    apply: async (workspaceId: string, operation: Operation, opts: WriteOptions = {}): Promise<OperationResult> =>
      await this.#json('operations.apply', { params: { id: workspaceId }, body: operation, write: opts }),
    /** `POST …/operations/batch`: 1–1000 operations, all or none */
    batch: async (workspaceId: string, operations: Operation[], opts: WriteOptions = {}): Promise<BatchResult> =>
      await this.#json('operations.batch', { params: { id: workspaceId }, body: { operations }, write: opts }),
    /** An `edit` operation: text replacements in a file, answered with a unified diff (`dryRun`: nothing written) */
    edit: async (workspaceId: string, path: string, edits: TextEdit[], opts: WriteOptions & { dryRun?: boolean } = {}): Promise<OperationResult> => {
      const { dryRun, ifMatch, ...rest } = opts
      return await this.operations.apply(workspaceId, {
        type: 'edit', path, edits, ...(dryRun === undefined ? {} : { dryRun }), ...(ifMatch === undefined ? {} : { ifMatch })
      }, rest)
    }
  }

  /** `POST …/revert`: undo a session's changes, or every change after a revision, as new changes */
  async revert (workspaceId: string, body: RevertBody, opts: WriteOptions = {}): Promise<RevertResult> {
    return await this.#json('revert', { params: { id: workspaceId }, body, write: opts })
  }

  // ---- sessions -----------------------------------------------------------------------------

  readonly sessions = {
    /** `GET /v1/sessions`: the caller's sessions, most recently active first */
    list: async (): Promise<SessionList['items']> => (await this.#json<SessionList>('sessions.list')).items,
    /** `GET /v1/sessions/{sid}/activity`: one page, oldest first */
    activity: async (sessionId: string, query: ActivityQuery = {}): Promise<ActivityPage> =>
      await this.#json('sessions.activity', { params: { sid: sessionId }, query: { ...query } }),
    /** `GET /v1/sessions/{sid}/log.md`: the activity as Markdown */
    log: async (sessionId: string): Promise<string> => (await this.#send('sessions.log', { params: { sid: sessionId } })).body as string
  }
}
