// Charts: an SVG sparkline per leaderboard row, and the model card's TTFT trend drawn by uPlot
// (served by this service from its installed package, like every other file of the page).
import uPlot from './vendor/uplot.js'

const SVG = 'http://www.w3.org/2000/svg'

/** A small line of `values` (null: no sample in that bucket), scaled to its own range. */
export function sparkline (values, { width = 120, height = 26, title = '' } = {}) {
  const svg = document.createElementNS(SVG, 'svg')
  svg.setAttribute('class', 'spark')
  svg.setAttribute('width', String(width))
  svg.setAttribute('height', String(height))
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`)
  svg.setAttribute('role', 'img')
  const label = document.createElementNS(SVG, 'title')
  label.textContent = title
  const baseline = document.createElementNS(SVG, 'line')
  baseline.setAttribute('class', 'baseline')
  baseline.setAttribute('x1', '0')
  baseline.setAttribute('x2', String(width))
  baseline.setAttribute('y1', String(height - 0.5))
  baseline.setAttribute('y2', String(height - 0.5))
  svg.append(label, baseline)
  const known = values.filter((v) => v !== null)
  if (known.length === 0) return svg
  const lo = Math.min(...known)
  const hi = Math.max(...known)
  const pad = 3
  const x = (i) => values.length === 1 ? width / 2 : pad + (i * (width - 2 * pad)) / (values.length - 1)
  const y = (v) => hi === lo ? height / 2 : height - pad - ((v - lo) * (height - 2 * pad)) / (hi - lo)
  let run = []
  const flush = () => {
    if (run.length === 1) {
      const c = document.createElementNS(SVG, 'circle')
      c.setAttribute('cx', String(run[0][0]))
      c.setAttribute('cy', String(run[0][1]))
      c.setAttribute('r', '1.8')
      svg.append(c)
    } else if (run.length > 1) {
      const line = document.createElementNS(SVG, 'polyline')
      line.setAttribute('points', run.map(([a, b]) => `${a.toFixed(1)},${b.toFixed(1)}`).join(' '))
      svg.append(line)
    }
    run = []
  }
  values.forEach((v, i) => {
    if (v === null) flush()
    else run.push([x(i), y(v)])
  })
  flush()
  return svg
}

/** The TTFT trend of the model card: p50 and p95 per bucket, gaps where a bucket had no sample. */
export class TrendChart {
  constructor (el) {
    this.el = el
    this.plot = null
    this.resize = new ResizeObserver(() => {
      if (this.plot !== null && this.el.clientWidth > 0) this.plot.setSize({ width: this.el.clientWidth, height: 220 })
    })
    this.resize.observe(el)
  }

  /** Points as the trends route answers them ({t, count, value}), one series per stat. */
  set (p50, p95) {
    const data = [
      p50.map((p) => Date.parse(p.t) / 1000),
      p50.map((p) => p.value),
      p95.map((p) => p.value)
    ]
    this.el.dataset.points = String(data[1].filter((v) => v !== null).length)
    if (this.plot === null) {
      // eslint-disable-next-line new-cap -- the library's own name
      this.plot = new uPlot(this.options(), data, this.el)
    } else {
      this.plot.setData(data)
    }
  }

  options () {
    const axis = { stroke: '#8e99ad', grid: { stroke: '#2a3447', width: 1 }, ticks: { stroke: '#2a3447', width: 1 } }
    return {
      width: Math.max(this.el.clientWidth, 280),
      height: 220,
      scales: { x: { time: true }, y: { range: (_u, min, max) => [0, max === null ? 1 : max * 1.1] } },
      series: [
        {},
        { label: 'p50', stroke: '#5b9dff', width: 2, points: { show: true, size: 5, fill: '#5b9dff' }, value: (_u, v) => v === null ? '—' : `${Math.round(v)} ms` },
        { label: 'p95', stroke: '#ff9f43', width: 2, dash: [5, 4], points: { show: true, size: 5, fill: '#ff9f43' }, value: (_u, v) => v === null ? '—' : `${Math.round(v)} ms` }
      ],
      axes: [axis, { ...axis, size: 80, values: (_u, ticks) => ticks.map((v) => `${Math.round(v).toLocaleString('en-US')} ms`) }]
    }
  }

  destroy () {
    this.resize.disconnect()
    this.plot?.destroy()
    this.plot = null
    this.el.replaceChildren()
    delete this.el.dataset.points
  }
}
