import type { EventEmitter } from 'node:events'
import type { Writable } from 'node:stream'
import fp from 'fastify-plugin'
import type { FastifyError } from 'fastify'
import type { Config } from '../config.js'
import { isReadBusy } from '../read/budget.js'
import { SseConnection } from '../stream/connection.js'
import { SnapshotHub, type Topic } from '../stream/hub.js'

/** A stream whose client stops reading is dropped once this much is waiting for it. */
export const MAX_BUFFERED_BYTES = 1_048_576
/** Retry-After of a refused stream, and the reconnection delay suggested to EventSource clients. */
export const STREAM_RETRY_S = 10

export interface MetricsStream {
  /** Open streams now. */
  readonly subscribers: number
  /** Distinct snapshots being computed now. */
  readonly topics: number
  /** METRICS_STREAM_MAX_SUBSCRIBERS streams are open: the route refuses another (503). */
  readonly full: boolean
  readonly maxSubscribers: number
  /** Whether the client connection `socket` carries an open stream already. */
  carries: (socket: EventEmitter) => boolean
  /**
   * Opens a stream listening to `topics` for the client on `socket`; its `body` is `response`'s.
   * The slot is given back when the stream ends, the response or the socket closes, or the client
   * stops taking bytes (SseConnection).
   */
  open: (topics: Topic[], socket: EventEmitter, response: Writable) => SseConnection
}

declare module 'fastify' {
  interface FastifyInstance {
    metricsStream: MetricsStream
  }
}

/** Heartbeats a client may leave untaken (its connection not draining) before its stream is dropped. */
export const STALL_HEARTBEATS = 2

/**
 * The live stream behind GET /api/metrics/stream: one SnapshotHub (one computation per snapshot per
 * METRICS_STREAM_INTERVAL_MS), the open connections, the cap on them. When the app closes, every
 * stream is ended first (preClose), so open streams never hold a graceful shutdown.
 */
export default fp<{ config: Config }>(async (fastify, opts) => {
  const { intervalMs, heartbeatMs, maxSubscribers } = opts.config.stream
  const hub = new SnapshotHub({
    intervalMs,
    // Loads go through storeLoad, so a failure is always the service's own error with its status.
    describeError: (err) => {
      const e = err as FastifyError
      return { statusCode: e.statusCode, code: e.code, message: e.message }
    },
    isTransient: isReadBusy
  })
  const open = new Set<SseConnection>()
  const sockets = new WeakSet<EventEmitter>()

  const metricsStream: MetricsStream = {
    get subscribers () { return open.size },
    get topics () { return hub.topics },
    get full () { return open.size >= maxSubscribers },
    maxSubscribers,
    carries: (socket) => sockets.has(socket),
    open (topics, socket, response) {
      const conn = new SseConnection({
        heartbeatMs,
        maxBufferedBytes: MAX_BUFFERED_BYTES,
        stallMs: STALL_HEARTBEATS * heartbeatMs,
        retryMs: STREAM_RETRY_S * 1000,
        // Called asynchronously (a stream closes on a later tick), after `leave` is set below.
        onClose: () => {
          open.delete(conn)
          sockets.delete(socket)
          leave()
        }
      })
      open.add(conn)
      sockets.add(socket)
      conn.attach(socket, response)
      const leave = hub.subscribe(topics, (event, data) => { conn.send(event, data) })
      return conn
    }
  }
  fastify.decorate('metricsStream', metricsStream)
  fastify.addHook('preClose', async () => {
    for (const conn of open) conn.end()
  })
  fastify.addHook('onClose', async () => { hub.close() })
}, { name: 'stream', dependencies: ['store', 'read-cache'] })
