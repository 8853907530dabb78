import t from 'tap'
import type { Static } from '@sinclair/typebox'
import type { WorkbenchClient, Live, PresenceMember, RpcParams } from '../../client/src/index.js'
import type * as ws from '../../schemas/ws.js'
import type * as h from '../helpers/http.js'

/**
 * Type-level checks, compiled by `npm run typecheck`: the SDK's answers and arguments are the
 * types the tests' own HTTP client derives from the route schemas (test/helpers/http.ts, a second,
 * independent derivation). A schema change the SDK does not follow stops the build here.
 */

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false
type Answer<F> = F extends (...args: any[]) => Promise<infer R> ? R : never
function same<T extends true> (_proof?: T): void {}

type C = WorkbenchClient

same<Equal<Answer<C['auth']['register']>, h.AuthResult>>()
same<Equal<Answer<C['auth']['login']>, h.AuthResult>>()
same<Equal<Answer<C['workspaces']['create']>, h.Workspace>>()
same<Equal<Answer<C['workspaces']['list']>, h.Workspace[]>>()
same<Equal<Answer<C['members']['put']>, h.Member>>()
same<Equal<Answer<C['files']['write']>, h.WriteResult>>()
same<Equal<Answer<C['files']['delete']>, h.DeleteResult>>()
same<Equal<Answer<C['files']['tree']>, h.TreeResult>>()
same<Equal<Answer<C['files']['changes']>, h.ChangesResult>>()
same<Equal<Answer<C['files']['history']>, h.HistoryResult>>()
same<Equal<Answer<C['operations']['apply']>, h.OperationResult>>()
same<Equal<Answer<C['operations']['batch']>, h.BatchResult>>()
same<Equal<Answer<C['revert']>, h.RevertResult>>()
same<Equal<Answer<C['sessions']['activity']>, h.ActivityPage>>()
same<Equal<Answer<C['sessions']['list']>, h.SessionSummary[]>>()
same<Equal<Omit<Answer<C['files']['readRaw']>, never>['bytes'], Uint8Array>>()
// A read is the entry plus what its headers said.
same<Equal<Omit<NonNullable<Answer<C['files']['read']>>, 'readRevision' | 'httpEtag'>, h.Entry>>()

// Arguments
same<Equal<Parameters<C['operations']['apply']>[1], h.Operation>>()
same<Equal<Parameters<C['operations']['batch']>[1], h.Operation[]>>()
same<Equal<Parameters<C['files']['write']>[2], { content: string, encoding?: 'utf8' | 'base64', mimeType?: string, metadata?: Record<string, unknown>, executable?: boolean }>>()
same<Equal<Parameters<C['operations']['edit']>[2], NonNullable<h.Operation['edits']>>>()

// RPC params are the schemas' (and the method names are the server's table's)
same<Equal<Parameters<Live['rpc']>[0], keyof typeof ws.RpcParams>>()
same<Equal<RpcParams<'files.write'>['content'], Static<(typeof ws.RpcParams)['files.write']>['content']>>()
// Presence members are the server's `presence.members` items
same<Equal<PresenceMember, Static<typeof ws.PresenceMember>>>()

t.pass('the SDK\'s types agree with the schemas (checked when this file compiles)')
