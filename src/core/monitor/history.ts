/**
 * Lag over time, per standby (or a standby's own replay): the samples a live view draws as a
 * sparkline and turns into a rate of catching up or falling behind. Keeps a bounded window.
 */
export interface LagSample {
  atMs: number
  bytes: number
}

export class LagHistory {
  private readonly series = new Map<string, LagSample[]>()

  constructor(private readonly keep = 600) {}

  push(key: string, atMs: number, bytes: number | null): void {
    if (bytes === null) return
    let s = this.series.get(key)
    if (!s) this.series.set(key, (s = []))
    s.push({atMs, bytes})
    if (s.length > this.keep) s.splice(0, s.length - this.keep)
  }

  /** The last `n` values, oldest first. */
  last(key: string, n: number): number[] {
    return (this.series.get(key) ?? []).slice(-n).map((x) => x.bytes)
  }

  /**
   * Bytes per second the lag changed over the last `windowMs` (positive: falling behind,
   * negative: catching up); null with fewer than two samples.
   */
  rate(key: string, windowMs = 10_000): number | null {
    const s = this.series.get(key)
    if (!s || s.length < 2) return null
    const end = s.at(-1)!
    const start = s.find((x) => x.atMs >= end.atMs - windowMs) ?? s[0]!
    const dt = (end.atMs - start.atMs) / 1000
    return dt > 0 ? (end.bytes - start.bytes) / dt : null
  }

  /** Standbys no longer reported are forgotten. */
  retain(keys: Set<string>): void {
    for (const k of this.series.keys()) if (!keys.has(k)) this.series.delete(k)
  }
}
