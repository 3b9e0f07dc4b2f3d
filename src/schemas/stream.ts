import { Type, type Static } from '@sinclair/typebox'
import { EntityTypeSchema, StringEnum } from './common.js'
import { LeaderboardQuerySchema } from './read.js'

/** What a stream can listen to; each topic is sent as the event of the same name. */
export const STREAM_TOPICS = ['leaderboard', 'sparklines', 'providers', 'gateways', 'realtime'] as const
export type StreamTopic = typeof STREAM_TOPICS[number]

export const StreamQuerySchema = Type.Object({
  topic: Type.Optional(Type.Array(StringEnum(STREAM_TOPICS), {
    minItems: 1,
    maxItems: STREAM_TOPICS.length,
    uniqueItems: true,
    default: ['leaderboard'],
    description: 'repeat for several: topic=leaderboard&topic=providers'
  })),
  ...LeaderboardQuerySchema.properties,
  type: Type.Optional(EntityTypeSchema),
  id: Type.Optional(Type.String({ minLength: 1, maxLength: 256, description: 'the realtime topic\'s id (required with it)' }))
})

export type StreamQuery = Static<typeof StreamQuerySchema>

/** The data of the `sparklines` event: one value per bucket, oldest first, for each leaderboard model. */
export interface Sparklines {
  metric: 'ttft'
  stat: 'p50'
  resolution: 'minute' | 'hour'
  /** Start of the first bucket. */
  from: string
  step_seconds: number
  series: Record<string, Array<number | null>>
}

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` })

/**
 * The data of each stream event as OpenAPI components (JSON Schema), referenced by the stream's
 * text/event-stream response: Leaderboard, ProviderSummary and Realtime are the JSON answers of the
 * routes of the same data. Documentation only: the stream's frames are not validated against them.
 */
export const StreamEventComponents = {
  Sparklines: {
    type: 'object',
    description: 'event `sparklines`: TTFT p50 per bucket, oldest first, for each leaderboard model',
    required: ['metric', 'stat', 'resolution', 'from', 'step_seconds', 'series'],
    properties: {
      metric: { type: 'string', enum: ['ttft'] },
      stat: { type: 'string', enum: ['p50'] },
      resolution: { type: 'string', enum: ['minute', 'hour'] },
      from: { type: 'string', format: 'date-time', description: 'start of the first bucket' },
      step_seconds: { type: 'integer' },
      series: { type: 'object', additionalProperties: { type: 'array', items: { type: ['number', 'null'] } }, description: 'model id → one value per bucket (null: no samples)' }
    }
  },
  GatewaysEvent: {
    type: 'object',
    description: 'event `gateways`: the realtime answers (type gateway, with gateway_fetches) of the gateways with the most requests in the window',
    required: ['window', 'gateways'],
    properties: { window: ref('WindowInfo'), gateways: { type: 'array', items: ref('Realtime') } }
  },
  StreamError: {
    type: 'object',
    description: 'event `error`: a topic could not be computed (the store is unreachable); the stream stays open',
    required: ['topic', 'message'],
    properties: {
      topic: { type: 'string', description: 'the event name of the topic' },
      statusCode: { type: 'integer' },
      code: { type: 'string' },
      message: { type: 'string' }
    }
  },
  StreamEvent: {
    description: 'The data (one line of JSON) of a stream event; the event name says which: leaderboard → Leaderboard, sparklines → Sparklines, providers → ProviderSummary, gateways → GatewaysEvent, realtime → Realtime, error → StreamError. `: ping` comment lines carry no data.',
    oneOf: [ref('Leaderboard'), ref('Sparklines'), ref('ProviderSummary'), ref('GatewaysEvent'), ref('Realtime'), ref('StreamError')]
  }
}
