const BARS = '▁▂▃▄▅▆▇█'

/** Values as a row of block characters, scaled from 0 to the largest value shown. */
export function sparkline(values: number[], width: number): string {
  const shown = values.slice(-Math.max(0, width))
  const max = Math.max(0, ...shown)
  return shown.map((v) => (max <= 0 ? BARS[0] : BARS[Math.min(BARS.length - 1, Math.floor((v / max) * (BARS.length - 1) + 0.5))])).join('')
}
