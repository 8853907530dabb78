import { sql } from 'kysely'
import type { Db } from '../db/schema.js'
import { isUuid } from '../core/validation.js'
import { ADMIN_PERMISSION, normaliseEmail } from './auth.js'

/**
 * Who has the `admin` permission (GET /v1/stats), managed by an operator with
 * `npm run admin -- grant|revoke <email | user id>` (src/admin-cli.ts). It is granted only to an
 * account that already exists, never to an address (issue "Hardening", finding 8: registering an
 * address listed in ADMIN_EMAILS made anyone who could register it an admin). Stored in the
 * account's `permissions` column, which GET /v1/stats reads on every call: a grant or a revoke
 * takes effect at once, without a new token.
 */

export const ADMIN_USAGE = 'usage: npm run admin -- grant <email | user id>\n       npm run admin -- revoke <email | user id>\n       npm run admin -- list\n'

/** What a command printed and its exit code: 0 done, 1 refused (no such account), 2 usage. */
export interface AdminOutcome {
  code: 0 | 1 | 2
  out: string
}

interface Account { id: string, email: string, permissions: string[] }

async function findAccount (db: Db, who: string): Promise<Account | undefined> {
  const q = db.selectFrom('users').select(['id', 'email', 'permissions'])
  // An operator may paste an id in either case; the API itself takes ids only in lower case.
  const id = who.toLowerCase()
  return await (isUuid(id) ? q.where('id', '=', id) : q.where('email', '=', normaliseEmail(who))).executeTakeFirst()
}

export async function runAdminCommand (db: Db, args: string[]): Promise<AdminOutcome> {
  const [command, who, ...rest] = args
  if (command === 'list' && who === undefined) {
    const admins = await db.selectFrom('users').select(['id', 'email'])
      .where(sql<boolean>`${ADMIN_PERMISSION}::text = ANY(permissions)`).orderBy('email').execute()
    return { code: 0, out: admins.map(a => `${a.id} ${a.email}\n`).join('') }
  }
  if ((command !== 'grant' && command !== 'revoke') || who === undefined || who.trim() === '' || rest.length > 0) {
    return { code: 2, out: ADMIN_USAGE }
  }
  const account = await findAccount(db, who)
  if (account === undefined) return { code: 1, out: `no account ${JSON.stringify(who)}: admin is granted only to an account that exists (register it first)\n` }
  const has = account.permissions.includes(ADMIN_PERMISSION)
  if (command === 'grant') {
    if (has) return { code: 0, out: `${account.email} (${account.id}) is already an admin\n` }
    await db.updateTable('users').set({ permissions: sql<string[]>`array_append(permissions, ${ADMIN_PERMISSION}::text)` })
      .where('id', '=', account.id).where(sql<boolean>`NOT (${ADMIN_PERMISSION}::text = ANY(permissions))`).execute()
    return { code: 0, out: `granted admin to ${account.email} (${account.id})\n` }
  }
  if (!has) return { code: 0, out: `${account.email} (${account.id}) is not an admin\n` }
  await db.updateTable('users').set({ permissions: sql<string[]>`array_remove(permissions, ${ADMIN_PERMISSION}::text)` })
    .where('id', '=', account.id).execute()
  return { code: 0, out: `revoked admin from ${account.email} (${account.id})\n` }
}
