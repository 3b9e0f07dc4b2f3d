// Loaded into a benchmarked server with --import: measures the event-loop delay inside it and
// answers the bench over IPC. Nothing else of the server changes.
//
// The histogram records the whole interval between two ticks of its `resolution` timer, so an idle
// loop records ≈ the resolution itself; the delay is what the tick came later than that (recorded −
// resolution, as @fastify/under-pressure computes it). Reported in ms.
import { monitorEventLoopDelay } from 'node:perf_hooks'

const RESOLUTION_MS = 10
const h = monitorEventLoopDelay({ resolution: RESOLUTION_MS })
h.enable()
const delay = (ns) => Math.max(0, ns / 1e6 - RESOLUTION_MS)
process.on('message', (msg) => {
  if (msg === 'eld-reset') h.reset()
  if (msg === 'eld') process.send?.({ eld: { p50: delay(h.percentile(50)), p99: delay(h.percentile(99)), max: delay(h.max) } })
})
process.channel?.unref()
