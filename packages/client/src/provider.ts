/**
 * The provider of a model id, as docs/api.md defines it: the part before the first `/`, else before the
 * first `:`, else `unknown`; an empty part is `unknown` too. Never throws: a value that is not a
 * string (a JavaScript caller's `undefined` model) is `unknown` as well, not a TypeError on the
 * request path.
 */
export function extractProvider (model: string): string {
  if (typeof model !== 'string') return 'unknown'
  const slash = model.indexOf('/')
  const cut = slash >= 0 ? slash : model.indexOf(':')
  if (cut <= 0) return 'unknown'
  return model.slice(0, cut)
}
