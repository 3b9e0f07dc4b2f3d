/**
 * Shared snapshots for the event stream. Every distinct snapshot (a topic key such as the 1h
 * leaderboard, best first, top 10) is computed once per interval, however many streams listen to
 * it, and its timer runs only while someone listens. No Fastify, no store: a topic brings its own
 * `load`.
 */

/** One snapshot a stream can listen to. */
export interface Topic {
  /** The event name the snapshot is sent as. */
  event: string
  /** What identifies the snapshot: listeners of one key share one computation. */
  key: string
  /** Computes the snapshot (a JSON-serialisable value); a rejection is sent as an `error` event. */
  load: () => Promise<unknown>
}

/** Receives frames: the event name and its data, already serialised as one line of JSON. */
export type Listener = (event: string, data: string) => void

export interface HubOptions {
  intervalMs: number
  /** The data of the `error` event sent when a load fails (besides `topic`). */
  describeError: (err: unknown) => object
}

interface Frame { event: string, data: string }

interface Entry {
  topic: Topic
  listeners: Set<Listener>
  timer: NodeJS.Timeout
  /** The last frame sent, replayed at once to a listener that joins. */
  last: Frame | undefined
  /** A load is running: a slow store does not pile up loads. */
  busy: boolean
}

export class SnapshotHub {
  readonly #entries = new Map<string, Entry>()
  readonly #opts: HubOptions

  constructor (opts: HubOptions) {
    this.#opts = opts
  }

  /** Distinct snapshots being computed now (one timer each). */
  get topics (): number {
    return this.#entries.size
  }

  /**
   * Listens to every topic: the last frame of a topic already computed comes at once, a new topic
   * is computed at once, then a frame comes whenever a computation differs from the last one sent.
   * Returns the function that stops listening; a topic's last listener leaving stops its timer.
   */
  subscribe (topics: Topic[], listener: Listener): () => void {
    for (const topic of topics) {
      const known = this.#entries.get(topic.key)
      if (known !== undefined) {
        known.listeners.add(listener)
        if (known.last !== undefined) listener(known.last.event, known.last.data)
        continue
      }
      const entry: Entry = {
        topic,
        listeners: new Set([listener]),
        timer: setInterval(() => { void this.#tick(entry) }, this.#opts.intervalMs),
        last: undefined,
        busy: false
      }
      this.#entries.set(topic.key, entry)
      void this.#tick(entry)
    }
    return () => {
      for (const topic of topics) this.#leave(topic.key, listener)
    }
  }

  /** Stops every timer; listeners get nothing more. */
  close (): void {
    for (const entry of this.#entries.values()) clearInterval(entry.timer)
    this.#entries.clear()
  }

  #leave (key: string, listener: Listener): void {
    const entry = this.#entries.get(key)
    // Gone already when the hub was closed first.
    if (entry === undefined) return
    entry.listeners.delete(listener)
    if (entry.listeners.size === 0) {
      clearInterval(entry.timer)
      this.#entries.delete(key)
    }
  }

  async #tick (entry: Entry): Promise<void> {
    if (entry.busy) return
    entry.busy = true
    let frame: Frame
    try {
      frame = { event: entry.topic.event, data: JSON.stringify(await entry.topic.load()) }
    } catch (err) {
      frame = { event: 'error', data: JSON.stringify({ topic: entry.topic.event, ...this.#opts.describeError(err) }) }
    }
    entry.busy = false
    // Unchanged (an answer still in the read cache, the same error): nothing to send.
    if (entry.last?.event === frame.event && entry.last.data === frame.data) return
    entry.last = frame
    for (const listener of entry.listeners) listener(frame.event, frame.data)
  }
}
