import { createHash } from 'node:crypto'
import t, { type Test } from 'tap'
import type pg from 'pg'
import { sql } from 'kysely'
import { lockWorkspace, type BlobContent } from '../../src/db/queries.js'
import { errors } from '../../src/core/errors.js'
import { GroupCommit, type GroupMember } from '../../src/mutations/group-commit.js'
import type { Trx } from '../../src/db/schema.js'
import { build, createTestDatabase, createWorkspace, dbClient, registerUser } from '../helpers/app.js'

/**
 * The group commit's transaction, on the real PostgreSQL: what its members share. The later
 * members of a group read the workspace head from the transaction instead of locking the row
 * again (db/queries.ts `lockWorkspace`); a member rolled back to its savepoint releases the row
 * locks it took, so the next member must lock again. Checked from another connection with
 * `FOR UPDATE NOWAIT`: refused (55P03) while the group holds the row.
 */

const blocked = async (outside: { query: (q: string, v: unknown[]) => Promise<unknown> }, workspaceId: string): Promise<string> => {
  try {
    await outside.query('SELECT id FROM workspaces WHERE id = $1 FOR UPDATE NOWAIT', [workspaceId])
    return 'free'
  } catch (err) {
    return (err as { code?: string }).code ?? String(err)
  }
}

/** An app on a database of its own, a workspace, a plain connection beside it, and a group commit on the app's pool. */
async function setup (t: Test): Promise<{ workspaceId: string, outside: pg.Client, groups: GroupCommit }> {
  const url = await createTestDatabase(t)
  const app = await build(t, { DATABASE_URL: url })
  const workspaceId = await createWorkspace(app, await registerUser(app))
  return { workspaceId, outside: await dbClient(t, url), groups: new GroupCommit(app.db, { enabled: true, maxMembers: 10, maxBytes: 1e9, maxMs: 10_000 }) }
}

const member = <X>(work: (trx: Trx) => Promise<X>, blobs: BlobContent[] = []): GroupMember<X, never> =>
  ({ work, blobs, bytes: 0, key: null, committed: () => {} })

t.test('a member that locked the workspace and failed: the next member locks it again', async t => {
  const { workspaceId, outside, groups } = await setup(t)
  // The first request runs alone; the two after it wait for it and form the next group together.
  let release = (): void => {}
  const gate = new Promise<void>(resolve => { release = resolve })
  const first = groups.run(workspaceId, member(async () => { await gate }))
  const failing = groups.run(workspaceId, member(async trx => {
    await lockWorkspace(trx, workspaceId)
    throw new Error('refused after locking')
  }))
  const seen: string[] = []
  const next = groups.run(workspaceId, member(async trx => {
    seen.push(await blocked(outside, workspaceId))
    const head = await lockWorkspace(trx, workspaceId)
    seen.push(await blocked(outside, workspaceId))
    return head
  }))
  release()
  await first
  await t.rejects(failing, /refused after locking/)
  t.match(await next, { revision: 0 })
  t.same(seen, ['free', '55P03'], 'the failed member\'s lock went with its savepoint; the next member took it again')
  t.equal(await blocked(outside, workspaceId), 'free', 'released at the commit')
})

t.test('a request alone that fails leaves nothing, not even its blob; one that succeeds alone commits', async t => {
  const { workspaceId, outside, groups } = await setup(t)
  const blob = (text: string): BlobContent => {
    const bytes = Buffer.from(text)
    return { sha256: createHash('sha256').update(bytes).digest('hex'), size: bytes.length, bytes }
  }
  const stored = async (sha: string): Promise<number> => (await outside.query('SELECT 1 FROM blobs WHERE sha256 = $1', [sha])).rowCount ?? 0
  const failed = blob(`refused ${Math.random()}`)
  await t.rejects(groups.run(workspaceId, member(async trx => {
    await trx.updateTable('workspaces').set({ name: 'renamed by a failed request' }).where('id', '=', workspaceId).execute()
    throw new Error('refused after writing')
  }, [failed])), /refused after writing/)
  t.equal(await stored(failed.sha256), 0, 'its blob is gone')
  t.equal((await outside.query('SELECT name FROM workspaces WHERE id = $1', [workspaceId])).rows[0]?.name, 'ws', 'its write is gone')
  const kept = blob(`kept ${Math.random()}`)
  await groups.run(workspaceId, member(async () => {}, [kept]))
  t.equal(await stored(kept.sha256), 1, 'a request that succeeded alone committed its blob')
})

/** Inserts a snapshot row naming `name` (a write any member can make), and whether one is there. */
const mark = async (trx: Trx, workspaceId: string, name: string): Promise<void> => {
  await trx.insertInto('snapshots').values({ workspace_id: workspaceId, name, revision: 0, created_by: null }).execute()
}
const marks = async (outside: pg.Client, workspaceId: string): Promise<string[]> =>
  (await outside.query<{ name: string }>('SELECT name FROM snapshots WHERE workspace_id = $1 ORDER BY name', [workspaceId])).rows.map(r => r.name)

/** Runs `members` as one group: the first request runs alone until released, the rest queue behind it. */
async function asOneGroup<X> (groups: GroupCommit, workspaceId: string, members: Array<GroupMember<X, never>>): Promise<Array<PromiseSettledResult<X>>> {
  let release = (): void => {}
  const gate = new Promise<void>(resolve => { release = resolve })
  const first = groups.run(workspaceId, member(async () => { await gate }))
  const rest = members.map(async m => await groups.run(workspaceId, m))
  release()
  await first
  return await Promise.allSettled(rest)
}

t.test('members without an Idempotency-Key take no savepoint; one that fails before writing leaves the group going', async t => {
  const { workspaceId, outside, groups } = await setup(t)
  const runs = [0, 0, 0]
  const settled = await asOneGroup(groups, workspaceId, [
    member(async trx => { runs[0]!++; await mark(trx, workspaceId, 'a') }),
    member(async trx => {
      runs[1]!++
      await trx.selectFrom('files').select('path').where('workspace_id', '=', workspaceId).execute()
      throw errors.preconditionFailed('/x', '1', null)
    }),
    member(async trx => { runs[2]!++; await mark(trx, workspaceId, 'c') })
  ])
  t.same(settled.map(s => s.status), ['fulfilled', 'rejected', 'fulfilled'], 'the refused member alone failed')
  // A row written in a savepoint carries its subtransaction's id as xmin; without one, the group's.
  const xmins = await outside.query<{ xmin: string }>('SELECT DISTINCT xmin::text FROM snapshots WHERE workspace_id = $1', [workspaceId])
  t.equal(xmins.rowCount, 1, 'both wrote in the group\'s transaction itself: no savepoint')
  t.same(runs, [1, 1, 1], 'each ran once: nothing to undo, so nothing ran again')
  t.same(await marks(outside, workspaceId), ['a', 'c'], 'its neighbours committed')
})

t.test('a member without a savepoint that fails after writing: nothing of the group commits, all run again, it in a savepoint', async t => {
  const { workspaceId, outside, groups } = await setup(t)
  const runs = [0, 0, 0, 0]
  const settled = await asOneGroup(groups, workspaceId, [
    member(async trx => { runs[0]!++; await mark(trx, workspaceId, 'a') }),
    member(async trx => {
      runs[1]!++
      await mark(trx, workspaceId, 'b')
      throw errors.fileExists('/b')
    }),
    member(async trx => {
      runs[2]!++
      await sql`select 1 / 0`.execute(trx) // (a database error: the transaction is aborted)
    }),
    member(async trx => { runs[3]!++; await mark(trx, workspaceId, 'd') })
  ])
  t.same(settled.map(s => s.status), ['fulfilled', 'rejected', 'rejected', 'fulfilled'])
  t.match(settled[1], { reason: { code: 'FILE_EXISTS', statusCode: 409 } }, 'its own error, as alone')
  t.match(settled[2], { reason: { code: '22012' } }, 'the database\'s error, as alone')
  t.same(runs, [3, 3, 2, 1], 'the group ran three times: b failed without a savepoint, then c; each then ran in one; d once, in the group that committed')
  t.same(await marks(outside, workspaceId), ['a', 'd'], 'nothing of the failed members stays')
})
