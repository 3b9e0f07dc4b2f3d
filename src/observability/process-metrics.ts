import { collectDefaultMetrics, Registry } from 'prom-client'

let shared: Registry | undefined

/**
 * prom-client's default metrics (CPU, memory, heap, handles, GC, event-loop delay as
 * `nodejs_eventloop_lag_*`), in a registry of their own, created once per process. They describe the
 * process, not an app; and their collectors (an event-loop delay monitor and a GC performance
 * observer) cannot be stopped, so one set per app would pile up in a process that builds many apps
 * (the tests). Not prom-client's global registry: nothing else can register into this one.
 */
export function processRegistry (): Registry {
  if (shared === undefined) {
    shared = new Registry()
    collectDefaultMetrics({ register: shared })
  }
  return shared
}
