/**
 * Run `fn` over `items` with at most `limit` calls in flight; results come back in the items'
 * order. For I/O that gains from overlap (fsyncs, reading headers of many files) without
 * opening every file at once.
 */
export async function mapLimited<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length)
  let next = 0
  const lane = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++
      results[i] = await fn(items[i]!, i)
    }
  }
  await Promise.all(Array.from({length: Math.min(Math.max(1, limit), items.length)}, lane))
  return results
}

/** Wait `ms`, or less if `signal` aborts first (reconnect back-offs, watch intervals): resolves either way. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve()
    const done = () => {
      clearTimeout(timer)
      signal?.removeEventListener('abort', done)
      resolve()
    }
    const timer = setTimeout(done, ms)
    signal?.addEventListener('abort', done, {once: true})
  })
}
