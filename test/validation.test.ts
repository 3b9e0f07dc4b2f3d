import t from 'tap'
import type { ErrorObject } from 'ajv'
import { describeErrors, fieldPath } from '../src/validation.js'

const err = (keyword: string, instancePath: string, params: Record<string, unknown> = {}, message?: string): ErrorObject =>
  ({ keyword, instancePath, schemaPath: '#', params, ...(message !== undefined ? { message } : {}) }) as ErrorObject

t.test('fieldPath', async (t) => {
  t.equal(fieldPath('body', ''), 'body')
  t.equal(fieldPath('body', '/3/model'), 'body[3].model')
  t.equal(fieldPath('querystring', '/a~1b~0c'), 'querystring.a/b~c')
})

t.test('describeErrors names the field for every kind of error', async (t) => {
  const cases: Array<[ErrorObject[], string]> = [
    [[err('required', '/2', { missingProperty: 'success' })], 'body[2].success is required'],
    [[err('enum', '/error_type', { allowedValues: ['timeout', 'other'] })], 'body.error_type must be one of timeout, other'],
    [[err('pattern', '/model', { pattern: '^[^\\s\\p{Cc}]+$' })], 'body.model must not contain whitespace or control characters'],
    [[err('pattern', '/gateway', { pattern: '^[^\\p{Cc}]+$' })], 'body.gateway must not contain control characters'],
    [[err('pattern', '/x', { pattern: '^a$' })], 'body.x must match ^a$'],
    [[err('type', '/timestamp', {}, 'must be number'), err('format', '/timestamp', { format: 'date-time' }), err('anyOf', '/timestamp')], 'body.timestamp must be epoch milliseconds or an ISO 8601 string with Z or an offset'],
    [[err('format', '/t', { format: 'date-time' })], 'body.t must be a date-time string'],
    [[err('maximum', '/ttft_ms', { limit: 3600000 }, 'must be <= 3600000')], 'body.ttft_ms must be <= 3600000'],
    [[err('maximum', '/ttft_ms')], 'body.ttft_ms is invalid']
  ]
  for (const [errors, message] of cases) t.equal(describeErrors(errors, 'body'), message)
})
