/**
 * A DOM for React tests: jsdom's window, document and navigator as globals, set up at import, before
 * React or @testing-library/react is loaded (import this module first). Node's own fetch, streams
 * and AbortController stay in place: the hooks talk to a real server.
 */
import { JSDOM } from 'jsdom'

const dom = new JSDOM('<!doctype html><html><body></body></html>', { url: 'http://127.0.0.1/' })
const g = globalThis as Record<string, unknown>
g.window = dom.window
g.document = dom.window.document
Object.defineProperty(globalThis, 'navigator', { value: dom.window.navigator, configurable: true })
g.HTMLElement = dom.window.HTMLElement
g.Node = dom.window.Node
// Snapshots arrive from a real server whenever it sends them, not inside act(): Testing Library's
// render, rerender and waitFor still use act, each switching this on for its own time.
g.IS_REACT_ACT_ENVIRONMENT = false

export const window = dom.window
