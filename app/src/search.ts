import type { SearchResult, WorkbenchClient } from '../../client/src/index.js'
import { describeError, field, h, replace } from './dom.js'

type Match = SearchResult['matches'][number]

/** The preview line with the match marked. */
function preview (m: Match): Array<Node | string> {
  const start = m.column - 1 - m.previewStart
  return [m.preview.slice(0, start), h('mark', {}, m.preview.slice(start, start + m.length)), m.preview.slice(start + m.length)]
}

/**
 * Find in files (`POST …/search`): a search form and its results, grouped by file; choosing a
 * result opens the file at the match. Typing searches after a short pause; older answers that
 * arrive late are dropped.
 */
export function searchPanel (client: WorkbenchClient, workspaceId: string, open: (path: string, line: number, column: number) => void): HTMLElement {
  const query = field('Search in files', { type: 'search', name: 'query', autocomplete: 'off', spellcheck: 'false' })
  const regex = field('Regex', { type: 'checkbox', name: 'regex' })
  const status = h('p', { role: 'status', class: 'status', 'aria-live': 'polite' })
  const results = h('ul', { class: 'results', 'aria-label': 'Search results' })
  let sequence = 0
  let timer: ReturnType<typeof setTimeout> | undefined

  const run = async (): Promise<void> => {
    clearTimeout(timer)
    const q = query.input.value
    const mine = ++sequence
    if (q === '') {
      results.replaceChildren()
      status.textContent = ''
      return
    }
    status.textContent = 'Searching…'
    try {
      const answer = await client.search(workspaceId, { query: q, isRegex: regex.input.checked, maxResults: 500 })
      if (mine !== sequence) return
      const byFile = new Map<string, Match[]>()
      for (const m of answer.matches) {
        const list = byFile.get(m.path)
        if (list === undefined) byFile.set(m.path, [m])
        else list.push(m)
      }
      replace(results, [...byFile].map(([path, matches]) => h('li', { class: 'result-file' },
        h('span', { class: 'result-path' }, path),
        h('ul', {}, matches.map(m => h('li', {},
          h('button', { type: 'button', class: 'result', 'data-path': m.path, 'data-line': m.line, onclick: () => { open(m.path, m.line, m.column) } },
            h('span', { class: 'line' }, `${m.line}:`), ' ', preview(m))))))))
      const n = answer.matches.length
      status.textContent = `${n} match${n === 1 ? '' : 'es'} in ${answer.filesMatched} file${answer.filesMatched === 1 ? '' : 's'}` +
        (answer.truncated ? ' (more not shown)' : '')
    } catch (err) {
      if (mine === sequence) status.textContent = `Search failed: ${describeError(err)}`
    }
  }

  query.input.addEventListener('input', () => {
    clearTimeout(timer)
    timer = setTimeout(() => { void run() }, 250)
  })
  regex.input.addEventListener('change', () => { void run() })
  const form = h('form', { role: 'search', 'aria-label': 'Search in files', class: 'search', onsubmit: (e: SubmitEvent) => { e.preventDefault(); void run() } },
    query.label, query.input, h('div', { class: 'row' }, regex.input, regex.label, h('button', { type: 'submit' }, 'Search')))
  return h('section', { class: 'panel', 'aria-label': 'Search' }, form, status, results)
}
