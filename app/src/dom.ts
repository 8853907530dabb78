/** A few lines of DOM building: `h('button', { type: 'button', onclick }, 'Save')`. */

type Attr = string | number | boolean | null | undefined | ((event: never) => void)
export type Child = Node | string | number | null | undefined | false

export function h<K extends keyof HTMLElementTagNameMap> (tag: K, attrs: Record<string, Attr> = {}, ...children: Array<Child | Child[]>): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag)
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue
    if (typeof value === 'function') el.addEventListener(key.slice(2), value as EventListener)
    else if (key === 'className') el.className = String(value)
    else el.setAttribute(key, value === true ? '' : String(value))
  }
  append(el, children)
  return el
}

export function append (el: Element, children: Array<Child | Child[]>): void {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue
    el.append(typeof child === 'number' ? String(child) : child)
  }
}

/** Replaces an element's children. */
export function replace (el: Element, ...children: Array<Child | Child[]>): void {
  el.replaceChildren()
  append(el, children)
}

let ids = 0
/** A unique id for label/aria wiring. */
export const uid = (prefix: string): string => `${prefix}-${++ids}`

/** A labelled input: the label element and the input, wired by id. */
export function field (label: string, attrs: Record<string, Attr>): { label: HTMLLabelElement, input: HTMLInputElement } {
  const id = uid('f')
  return { label: h('label', { for: id }, label), input: h('input', { id, ...attrs }) }
}

/** An error's message as a user should read it. */
export function describeError (err: unknown): string {
  if (err instanceof Error) return err.message
  return String(err)
}

export const time = (iso: string): string => {
  const d = new Date(iso)
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleTimeString()
}
