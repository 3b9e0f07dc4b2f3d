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
