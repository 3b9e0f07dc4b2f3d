/**
 * The provider of a model id, as docs/api.md defines it: the part before the first `/`, else before the
 * first `:`, else `unknown`; an empty part is `unknown` too.
 */
export function extractProvider (model: string): string {
  const slash = model.indexOf('/')
  const cut = slash >= 0 ? slash : model.indexOf(':')
  if (cut <= 0) return 'unknown'
  return model.slice(0, cut)
}
