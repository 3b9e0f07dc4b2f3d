// Loaded into a benchmarked server with --import: measures the event-loop delay inside it and
// answers the bench over IPC. Nothing else of the server changes.
import { monitorEventLoopDelay } from 'node:perf_hooks'

const h = monitorEventLoopDelay({ resolution: 10 })
h.enable()
process.on('message', (msg) => {
  if (msg === 'eld-reset') h.reset()
  if (msg === 'eld') process.send?.({ eld: { p50: h.percentile(50) / 1e6, p99: h.percentile(99) / 1e6, max: h.max / 1e6 } })
})
process.channel?.unref()
