// `node --import ./test/loader/register.mjs`: runs the TypeScript sources in tests and in the
// processes tests spawn. tsx would do, but it minifies whitespace, which leaves V8's coverage a
// few lines per file and the coverage figures meaningless; this loader keeps every line.
import { register } from 'node:module'

register('./hooks.mjs', import.meta.url)
