import t from 'tap'
import { extractProvider } from '../../packages/client/src/provider.js'

t.test('extractProvider', async (t) => {
  const cases: Array<[string, string]> = [
    ['anthropic/claude-3.5-sonnet', 'anthropic'],
    ['openai/gpt-4o:online', 'openai'],
    ['gpt-4o:online', 'gpt-4o'],
    ['gpt-4o', 'unknown'],
    ['/gpt-4o', 'unknown'],
    [':free', 'unknown'],
    ['a:b/c', 'a:b']
  ]
  for (const [model, provider] of cases) t.equal(extractProvider(model), provider, model)
})
