/**
 * A route's hooks of one kind (none, one or several, as Fastify's `onRoute` hands them over) with
 * `hook` added: last by default, first where it must run before the route's own (authentication).
 */
export function withHook<H> (existing: H | H[] | undefined, hook: H, at: 'first' | 'last' = 'last'): H[] {
  const hooks = [existing].flat().filter((h): h is H => h !== undefined)
  return at === 'first' ? [hook, ...hooks] : [...hooks, hook]
}
