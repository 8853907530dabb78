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
  },
  // The layers (docs/architecture.md): src/core imports nothing else of the project but schemas/
  // (types); src/db only src/core and schemas/; schemas/ only each other; nothing in src/ reaches
  // plugins/ or routes/ except the composition root, src/app.ts.
  {
    name: 'workbench/layers-src',
    files: ['src/**/*.ts'],
    ignores: ['src/app.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [{ regex: '^(\\.\\./)+(plugins|routes)/', message: 'src/ never imports plugins/ or routes/: only src/app.ts wires them.' }]
      }]
    }
  },
  {
    name: 'workbench/layers-core',
    files: ['src/core/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [{ regex: '^\\.\\./(?!\\.\\./schemas/)', message: 'src/core imports nothing above it (schemas/ for types only).' }]
      }]
    }
  },
  {
    name: 'workbench/layers-db',
    files: ['src/db/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [{ regex: '^\\.\\./(?!core/|\\.\\./schemas/)', message: 'src/db imports only src/core (and schemas/ for types).' }]
      }]
    }
  },
  {
    name: 'workbench/layers-schemas',
    files: ['schemas/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [{ regex: '^\\.\\./', message: 'schemas/ import only each other.' }]
      }]
    }
  }
]
