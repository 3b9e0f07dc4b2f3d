/**
 * Shared snapshots for the event stream. Every distinct computation (a topic key such as the 1h
 * leaderboard, best first, computed for 10 entries) runs once per interval, however many streams
 * listen to it, and its timer runs only while someone listens. Listeners may take different views
 * of one computation (the first 5 or the first 7 entries): each view is serialised once per change.
 * No Fastify, no store: a topic brings its own `load`.
 */

/** One snapshot a stream can listen to. */
export interface Topic {
  /** The event name the snapshot is sent as. */
  event: string
  /** What identifies the computation: listeners of one key share one computation per interval. */
  key: string
  /** Computes the snapshot (a JSON-serialisable value); a rejection is sent as an `error` event. */
  load: () => Promise<unknown>
  /** What of the computed value this listener is sent (all of it by default); `key` names the view. */
  view?: { key: string, project: (value: unknown) => unknown }
}

/** Receives frames: the event name and its data, already serialised as one line of JSON. */
export type Listener = (event: string, data: string) => void

export interface HubOptions {
  intervalMs: number
  /** The data of the `error` event sent when a load fails (besides `topic`). */
  describeError: (err: unknown) => object
  /**
   * A failure that says nothing about the data (the read budget refused the load): the snapshot
   * already sent stays, and the next interval tries again. Only a topic with nothing sent yet gets
   * an `error` event for it.
   */
  isTransient?: (err: unknown) => boolean
}

interface Frame { event: string, data: string }

interface View {
  project: (value: unknown) => unknown
  listeners: Set<Listener>
  /** The last frame sent, replayed at once to a listener that joins. */
  last: Frame | undefined
}

interface Entry {
  topic: Topic
  views: Map<string, View>
  timer: NodeJS.Timeout
  /** What the last computation gave: a view that joins is sent its share of it. */
  current: { value: unknown } | { error: Frame } | undefined
  /** A load is running: a slow store does not pile up loads. */
  busy: boolean
}

const WHOLE = ''
const whole = (value: unknown): unknown => value

export class SnapshotHub {
  readonly #entries = new Map<string, Entry>()
  readonly #opts: HubOptions

  constructor (opts: HubOptions) {
    this.#opts = opts
  }

  /** Distinct computations running now (one timer each). */
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
      let entry = this.#entries.get(topic.key)
      const fresh = entry === undefined
      if (entry === undefined) {
        const created: Entry = {
          topic,
          views: new Map(),
          timer: setInterval(() => { void this.#tick(created) }, this.#opts.intervalMs),
          current: undefined,
          busy: false
        }
        this.#entries.set(topic.key, entry = created)
      }
      const viewKey = topic.view?.key ?? WHOLE
      let view = entry.views.get(viewKey)
      if (view === undefined) {
        entry.views.set(viewKey, view = { project: topic.view?.project ?? whole, listeners: new Set(), last: undefined })
        if (entry.current !== undefined) view.last = this.#frameOf(entry, view)
      }
      view.listeners.add(listener)
      if (view.last !== undefined) listener(view.last.event, view.last.data)
      if (fresh) void this.#tick(entry)
    }
    return () => {
      for (const topic of topics) this.#leave(topic, listener)
    }
  }

  /** Stops every timer; listeners get nothing more. */
  close (): void {
    for (const entry of this.#entries.values()) clearInterval(entry.timer)
    this.#entries.clear()
  }

  #leave (topic: Topic, listener: Listener): void {
    const entry = this.#entries.get(topic.key)
    // Gone already when the hub was closed first.
    if (entry === undefined) return
    const viewKey = topic.view?.key ?? WHOLE
    const view = entry.views.get(viewKey)
    view?.listeners.delete(listener)
    if (view?.listeners.size === 0) entry.views.delete(viewKey)
    if (entry.views.size === 0) {
      clearInterval(entry.timer)
      this.#entries.delete(topic.key)
    }
  }

  #frameOf (entry: Entry, view: View): Frame {
    const current = entry.current!
    if ('error' in current) return current.error
    return { event: entry.topic.event, data: JSON.stringify(view.project(current.value)) }
  }

  async #tick (entry: Entry): Promise<void> {
    if (entry.busy) return
    entry.busy = true
    try {
      entry.current = { value: await entry.topic.load() }
    } catch (err) {
      // Keep what was sent: the data did not fail, this instance only had no room to read it.
      if (this.#opts.isTransient?.(err) === true && entry.current !== undefined) return
      entry.current = { error: { event: 'error', data: JSON.stringify({ topic: entry.topic.event, ...this.#opts.describeError(err) }) } }
    } finally {
      entry.busy = false
    }
    for (const view of entry.views.values()) {
      const frame = this.#frameOf(entry, view)
      // Unchanged (an answer still in the read cache, the same error): nothing to send.
      if (view.last?.event === frame.event && view.last.data === frame.data) continue
      view.last = frame
      for (const listener of view.listeners) listener(frame.event, frame.data)
    }
  }
}
