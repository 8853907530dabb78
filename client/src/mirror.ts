import { ApiError } from './errors.js'
import type { WorkbenchClient } from './client.js'
import type { LiveEvent, SubscribeOptions, Subscription } from './live.js'
import type { Change, FileMeta } from './types.js'

/**
 * A workspace's tree kept in memory and in sync: a snapshot (`GET /tree`) plus the change feed
 * applied in revision order. At every revision N it reaches, `entries` is what `GET /tree?depth=0`
 * answers at N (path → meta, the root excluded).
 *
 * A change says what happened to the tree but not every field of the meta it leaves: a create or
 * an update does not carry the file's mimeType and metadata. For those the mirror reads the
 * entry as it was right after that revision (`GET …/files/{path}?revision=N&lines=1-1`, a few
 * bytes), several ahead at once, and applies them strictly in order. Moves, copies, deletes and
 * the parent directories a write creates are derived as the server makes them; a revert's move
 * back (its change has no version) makes the mirror read the whole tree again.
 */

export interface MirrorUpdate {
  /** `snapshot`: the whole tree was (re)read; `change`: one change was applied */
  type: 'snapshot' | 'change'
  revision: number
  /** the change (type `change`) */
  change?: Change
  /** the change's opId is one of this client's writes */
  own?: boolean
}

export interface MirrorOptions {
  /** read each created/updated entry's full meta (default true); false: mimeType and metadata stay as they were (null/{} for new files) */
  fetchMeta?: boolean
  /** how many meta reads may be in flight ahead of the one being applied (default 16) */
  readAhead?: number
  /** something went wrong that the mirror recovers from by reading the tree again */
  onError?: (error: unknown) => void
  /**
   * more options of the mirror's subscription (it holds its workspace's one): e.g. `onBroadcast`,
   * presence. The same object is used again whenever the mirror subscribes anew.
   */
  subscribe?: Omit<SubscribeOptions, 'since' | 'onReset'>
}

interface Pending { event: LiveEvent, meta: Promise<FileMeta | null> | null }

/** Sorts as PostgreSQL's `COLLATE "C"` does: by UTF-8 bytes, i.e. by code point. */
export function comparePaths (a: string, b: string): number {
  const x = [...a]
  const y = [...b]
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = (x[i]?.codePointAt(0) ?? 0) - (y[i]?.codePointAt(0) ?? 0)
    if (d !== 0) return d
  }
  return x.length - y.length
}

const nameOf = (path: string): string => path.slice(path.lastIndexOf('/') + 1)
const ancestorsOf = (path: string): string[] => {
  const parts = path.split('/').slice(1, -1)
  return parts.map((_, i) => '/' + parts.slice(0, i + 1).join('/'))
}
/**
 * Whether the entries a change leaves follow from it (with the meta the mirror reads for creates
 * and updates). A revert that undoes a move moves the entries back as they were before that move,
 * each with a new version: its `move` change carries no version, and the mirror reads the tree again.
 */
const derivable = (change: Change): boolean => change.op !== 'move' || change.version !== null
const isAtOrBelow = (path: string, root: string): boolean => path === root || path.startsWith(root + '/')

export class WorkspaceMirror {
  /** path → meta of every entry (the root `/` excluded) */
  readonly entries = new Map<string, FileMeta>()
  /** the revision `entries` is at */
  revision = 0
  readonly #client: WorkbenchClient
  readonly #options: MirrorOptions
  readonly #listeners = new Set<(update: MirrorUpdate) => void>()
  readonly #waiters = new Set<{ revision: number, resolve: () => void }>()
  #queue: Pending[] = []
  #pumping = false
  /** bumped by every snapshot: work queued before it is dropped */
  #generation = 0
  #subscription: Subscription | null = null
  #closed = false

  private constructor (client: WorkbenchClient, readonly workspaceId: string, options: MirrorOptions) {
    this.#client = client
    this.#options = options
  }

  /** Reads the tree and follows its changes from the revision it was read at. */
  static async open (client: WorkbenchClient, workspaceId: string, options: MirrorOptions = {}): Promise<WorkspaceMirror> {
    const mirror = new WorkspaceMirror(client, workspaceId, options)
    await mirror.#follow(await mirror.#snapshot())
    return mirror
  }

  /** Follows the change feed from `revision` (a new subscription replaces the previous one). */
  async #follow (revision: number): Promise<void> {
    if (this.#closed) return
    const subscription = this.#client.live.subscribe(this.workspaceId, {
      ...this.#options.subscribe,
      since: revision,
      onReset: async () => await this.#snapshot()
    }, event => { if (subscription === this.#subscription) this.#enqueue(event) })
    this.#subscription = subscription
    await subscription.ready
  }

  /**
   * An entry's meta could not be read (its history pruned meanwhile, the network gone through
   * every retry): the mirror cannot know it, so it reads the whole tree again and follows from there.
   */
  async #resync (): Promise<void> {
    if (this.#closed) return
    try {
      await this.#follow(await this.#snapshot())
    } catch (err) {
      this.#options.onError?.(err)
      setTimeout(() => { void this.#resync() }, 1_000)
    }
  }

  /** The subscription the mirror follows the workspace with (replaced when it reads the tree again). */
  get subscription (): Subscription | null { return this.#subscription }

  /** Called after the snapshot and after each applied change. Returns the unsubscribe function. */
  onChange (listener: (update: MirrorUpdate) => void): () => void {
    this.#listeners.add(listener)
    return () => { this.#listeners.delete(listener) }
  }

  /** The entries sorted by path, as `GET /tree?depth=0` lists them. */
  list (): FileMeta[] {
    return [...this.entries.values()].sort((a, b) => comparePaths(a.path, b.path))
  }

  /** Resolves once the mirror has applied `revision` (or a snapshot at or after it). */
  async reached (revision: number, timeoutMs = 30_000): Promise<void> {
    if (this.revision >= revision) return
    await new Promise<void>((resolve, reject) => {
      const waiter = { revision, resolve: () => { clearTimeout(timer); resolve() } }
      const timer = setTimeout(() => {
        this.#waiters.delete(waiter)
        reject(new ApiError(0, 'TIMEOUT', `mirror still at ${this.revision}, waiting for ${revision}`))
      }, timeoutMs)
      this.#waiters.add(waiter)
    })
  }

  /** Stops following the workspace. */
  close (): void {
    this.#closed = true
    this.#subscription?.unsubscribe()
    this.#subscription = null
    this.#generation++
    this.#queue = []
  }

  /**
   * Reads the whole tree. Pages after the first read current data, so a multi-page read is
   * accepted only when the head did not move while it was read (else read again, up to 5 times).
   */
  async #snapshot (): Promise<number> {
    const generation = ++this.#generation
    this.#queue = []
    let read = await this.#client.files.treeAll(this.workspaceId, { path: '/', depth: 0 })
    for (let attempt = 0; read.pages > 1 && attempt < 5; attempt++) {
      const head = (await this.#client.workspaces.get(this.workspaceId)).revision
      if (head === read.revision) break
      read = await this.#client.files.treeAll(this.workspaceId, { path: '/', depth: 0 })
    }
    if (generation !== this.#generation) return read.revision
    this.entries.clear()
    for (const entry of read.entries) this.entries.set(entry.path, entry)
    this.revision = read.revision
    this.#emit({ type: 'snapshot', revision: read.revision })
    return read.revision
  }

  #enqueue (event: LiveEvent): void {
    this.#queue.push({ event, meta: null })
    void this.#pump()
  }

  /** Whether a change's entry needs its full meta read (what the change does not carry). */
  #needsMeta (change: Change): boolean {
    return this.#options.fetchMeta !== false && (change.op === 'create' || change.op === 'update' || change.op === 'mkdir')
  }

  /** The entry as it was right after the change (a few lines of a file's content at most). */
  async #metaAt (change: Change): Promise<FileMeta | null> {
    const read = async (lines?: string): Promise<FileMeta> => {
      const entry = await this.#client.files.read(this.workspaceId, change.path, { revision: change.revision, ...(lines === undefined ? {} : { lines }) })
      const { content: _c, encoding: _e, children: _ch, childrenTruncated: _t, lines: _l, totalLines: _n, readRevision: _r, httpEtag: _h, ...meta } = entry
      return meta
    }
    try {
      return await read(change.kind === 'file' ? '1-1' : undefined)
    } catch (err) {
      if (err instanceof ApiError && err.code === 'NOT_TEXT') return await read()
      this.#options.onError?.(err)
      return null
    }
  }

  async #pump (): Promise<void> {
    if (this.#pumping) return
    this.#pumping = true
    const generation = this.#generation
    try {
      while (this.#queue.length > 0 && generation === this.#generation) {
        const ahead = this.#options.readAhead ?? 16
        for (const item of this.#queue.slice(0, ahead)) {
          if (item.meta === null && this.#needsMeta(item.event.change)) item.meta = this.#metaAt(item.event.change)
        }
        const item = this.#queue[0]
        if (item === undefined) break
        if (item.event.revision > this.revision && !derivable(item.event.change)) {
          // What this change left cannot be told from it: read the tree again (at or after it).
          this.#generation++
          this.#queue = []
          void this.#resync()
          break
        }
        const meta = item.meta === null ? null : await item.meta
        if (generation !== this.#generation) break
        if (meta === null && item.meta !== null) {
          // Its meta is unknown: start again from a fresh snapshot.
          this.#generation++
          this.#queue = []
          void this.#resync()
          break
        }
        this.#queue.shift()
        if (item.event.revision <= this.revision) continue
        this.#apply(item.event.change, meta)
        this.revision = item.event.revision
        this.#emit({ type: 'change', revision: item.event.revision, change: item.event.change, own: item.event.own })
      }
    } finally {
      this.#pumping = false
    }
    if (generation !== this.#generation && this.#queue.length > 0) void this.#pump()
  }

  #emit (update: MirrorUpdate): void {
    for (const waiter of [...this.#waiters]) {
      if (this.revision >= waiter.revision) {
        this.#waiters.delete(waiter)
        waiter.resolve()
      }
    }
    for (const listener of this.#listeners) listener(update)
  }

  /** A directory as the server creates one (mkdir, or a missing parent of a write). */
  #directory (path: string, change: Change): FileMeta {
    return {
      path,
      name: nameOf(path),
      kind: 'directory',
      size: null,
      mimeType: null,
      etag: String(change.revision),
      version: 1,
      sha256: null,
      metadata: {},
      executable: false,
      createdAt: change.at,
      updatedAt: change.at,
      createdBy: change.userId,
      updatedBy: change.userId
    }
  }

  #ensureParents (path: string, change: Change): void {
    for (const dir of ancestorsOf(path)) if (!this.entries.has(dir)) this.entries.set(dir, this.#directory(dir, change))
  }

  /** The entry at `root` and everything below it. */
  #subtree (root: string): FileMeta[] {
    return [...this.entries.values()].filter(e => isAtOrBelow(e.path, root))
  }

  #remove (root: string): void {
    for (const e of this.#subtree(root)) this.entries.delete(e.path)
  }

  /** Applies one change to `entries`, as the server applied it to the files. */
  #apply (change: Change, meta: FileMeta | null): void {
    const revision = String(change.revision)
    switch (change.op) {
      case 'create':
      case 'mkdir': {
        this.#ensureParents(change.path, change)
        const previous = this.entries.get(change.path)
        this.entries.set(change.path, meta ?? (change.kind === 'directory'
          ? this.#directory(change.path, change)
          : {
              path: change.path,
              name: nameOf(change.path),
              kind: 'file',
              size: change.size,
              mimeType: previous?.mimeType ?? null,
              etag: revision,
              version: change.version ?? 1,
              sha256: change.sha256,
              metadata: {},
              executable: previous?.executable ?? false,
              createdAt: change.at,
              updatedAt: change.at,
              createdBy: change.userId,
              updatedBy: change.userId
            }))
        return
      }
      case 'update': {
        const previous = this.entries.get(change.path)
        if (meta !== null) this.entries.set(change.path, meta)
        else if (previous !== undefined) {
          this.entries.set(change.path, { ...previous, etag: revision, version: change.version ?? previous.version, sha256: change.sha256, size: change.size, updatedAt: change.at, updatedBy: change.userId })
        }
        return
      }
      case 'delete':
        this.#remove(change.path)
        return
      case 'move':
      case 'copy': {
        const to = change.newPath
        if (to === null) return
        const moved = this.#subtree(change.path)
        // `overwrite`: the file at the target is replaced
        this.#remove(to)
        this.#ensureParents(to, change)
        if (change.op === 'move') this.#remove(change.path)
        for (const e of moved) {
          const path = to + e.path.slice(change.path.length)
          this.entries.set(path, change.op === 'move'
            ? { ...e, path, name: nameOf(path), etag: revision, updatedAt: change.at, updatedBy: change.userId }
            : { ...e, path, name: nameOf(path), version: 1, etag: revision, createdAt: change.at, createdBy: change.userId, updatedAt: change.at, updatedBy: change.userId })
        }
      }
    }
  }
}
