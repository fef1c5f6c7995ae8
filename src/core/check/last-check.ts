import {mkdir, readFile, rename, writeFile} from 'node:fs/promises'
import {homedir} from 'node:os'
import {join} from 'node:path'

/**
 * What one check run remembers of a server for the next: the cumulative counters that only
 * mean something as a difference ("recovery conflicts since the last check"). One small JSON
 * file per server, so monitoring runs against different servers never write the same file.
 */
export interface LastCheck {
  /** The server's system identifier: another cluster on the same address starts afresh. */
  systemId: string | null
  /** pg_stat_database_conflicts summed over databases. */
  conflicts: number
  /** When it was read (ms since the epoch, the server's clock). */
  atMs: number
}

/** Where `repl check` keeps it unless --state-dir says: $XDG_STATE_HOME/repl/check. */
export function defaultStateDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.XDG_STATE_HOME || join(env.HOME || homedir(), '.local', 'state'), 'repl', 'check')
}

export function lastCheckFile(dir: string, target: string): string {
  return join(dir, `${target.replace(/[^A-Za-z0-9.-]/g, '_')}.json`)
}

/** The previous run's figures, or null when there was none (or the file is unreadable as JSON). */
export async function readLastCheck(file: string): Promise<LastCheck | null> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw err
  }
  try {
    const v = JSON.parse(text) as Partial<LastCheck>
    return typeof v.conflicts === 'number' && typeof v.atMs === 'number' ? {systemId: v.systemId ?? null, conflicts: v.conflicts, atMs: v.atMs} : null
  } catch {
    return null
  }
}

/** Written to a temporary name and renamed: a run killed half-way leaves the old file whole. */
export async function writeLastCheck(file: string, value: LastCheck): Promise<void> {
  await mkdir(join(file, '..'), {recursive: true, mode: 0o700})
  const tmp = `${file}.${process.pid}.tmp`
  await writeFile(tmp, `${JSON.stringify(value)}\n`, {mode: 0o600})
  await rename(tmp, file)
}

/**
 * Conflicts since the previous run: the difference of the counters, or the whole count when
 * statistics were reset in between (it went down) or the address now holds another cluster.
 * The first run has nothing to compare with: 0, and the count so far becomes the baseline.
 */
export function conflictsSince(previous: LastCheck | null, systemId: string | null, total: number): {value: number; sinceMs: number | null} {
  if (!previous) return {value: 0, sinceMs: null}
  if (previous.systemId !== systemId || total < previous.conflicts) return {value: total, sinceMs: previous.atMs}
  return {value: total - previous.conflicts, sinceMs: previous.atMs}
}
