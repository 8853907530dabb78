import neostandard from 'neostandard'

// neostandard is the Standard style (2-space indent, no semicolons, single quotes, a space before
// a function's parentheses). No type-aware rules, so `npm run lint` needs no type-checking pass and
// stays fast; `npm run typecheck` (tsc) does that job.
export default [
  ...neostandard({
    ts: true,
    noJsx: true,
    ignores: ['dist/**', 'data/**', 'node_modules/**', '.tap/**', 'coverage/**', 'bench/results/**']
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
  }
]
