import neostandard from 'neostandard'

// neostandard is the Standard style (2-space indent, no semicolons, single quotes, a space before
// a function's parentheses). No type-aware rules, so `npm run lint` needs no type-checking pass and
// stays fast; `npm run typecheck` (tsc) does that job.
export default [
  ...neostandard({
    ts: true,
    noJsx: true,
    ignores: ['dist/**', 'client/dist/**', 'data/**', 'node_modules/**', '.tap/**', 'coverage/**', 'bench/results/**']
  }),
  {
    name: 'workbench/project-style',
    rules: {
      // `void promise` marks a promise deliberately not awaited (e.g. `void reply.headers(…)`).
      'no-void': ['error', { allowAsStatement: true }]
    }
  },
  {
    name: 'workbench/typebox',
    files: ['**/*.ts'],
    rules: {
      // TypeBox's idiom names a schema and its Static<> type alike
      // (`export const User = Type.Object(…)` + `export type User = Static<typeof User>`);
      // tsc already reports real redeclarations (ts 2451).
      '@typescript-eslint/no-redeclare': 'off'
    }
  },
  ...layers()
]

/**
 * The layers (docs/architecture.md), as import rules: src/core imports nothing else of the
 * project (schemas/ for types); src/db only src/core; src/ops (running the service) only those
 * two; the features import downwards only (accounts ← mutations ← files ← search ← live, mcp); schemas/ only
 * each other; nothing in src/ reaches plugins/ or routes/ except the composition root, src/app.ts.
 * ESLint keeps the last matching setting of a rule per file, so each block lists everything its
 * files may not import.
 */
function layers () {
  const wiring = { regex: '^(\\.\\./)+(plugins|routes)/', message: 'src/ never imports plugins/ or routes/: only src/app.ts wires them.' }
  const below = (folder, allowed) => ({
    name: `workbench/layers-${folder}`,
    files: [`src/${folder}/**/*.ts`],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [wiring, {
          regex: `^\\.\\./(?!${[...allowed.map(a => `${a}/`), '\\.\\./schemas/'].join('|')})`,
          message: `src/${folder} may import only ${allowed.length === 0 ? 'schemas/' : `src/{${allowed.join(',')}} and schemas/`}.`
        }]
      }]
    }
  })
  return [
    { name: 'workbench/layers-src', files: ['src/**/*.ts'], ignores: ['src/app.ts'], rules: { 'no-restricted-imports': ['error', { patterns: [wiring] }] } },
    below('core', []),
    below('db', ['core']),
    below('ops', ['core', 'db']),
    below('accounts', ['core', 'db']),
    below('mutations', ['core', 'db', 'accounts']),
    below('files', ['core', 'db', 'accounts', 'mutations']),
    below('search', ['core', 'db', 'accounts', 'mutations', 'files']),
    below('snapshots', ['core', 'db', 'accounts', 'mutations', 'files']),
    below('archive', ['core', 'db', 'accounts', 'mutations', 'files']),
    below('live', ['core', 'db', 'accounts', 'mutations', 'files', 'search', 'snapshots']),
    below('mcp', ['core', 'db', 'accounts', 'mutations', 'files', 'search', 'snapshots']),
    {
      name: 'workbench/layers-schemas',
      files: ['schemas/**/*.ts'],
      rules: { 'no-restricted-imports': ['error', { patterns: [{ regex: '^\\.\\./', message: 'schemas/ import only each other.' }] }] }
    }
  ]
}
