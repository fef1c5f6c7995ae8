import {chmod, mkdir, readdir, rm, stat} from 'node:fs/promises'
import {join} from 'node:path'

import {fromSystemError, ReplError} from '../errors.js'

/**
 * The directories a backup writes into. Each must be absent or empty, as for pg_basebackup;
 * whatever this run created is remembered so a failed or interrupted run can remove it
 * (directories it made, or the contents of empty ones it was given) and leave nothing
 * half-made behind.
 */
export class TargetDirs {
  private readonly made: string[] = []
  private readonly filled: string[] = []

  /** Throw unless `dir` is absent or an empty directory. Nothing is created. */
  static async checkUsable(dir: string, what = 'directory'): Promise<'absent' | 'empty'> {
    let entries: string[]
    try {
      const st = await stat(dir)
      if (!st.isDirectory()) throw new ReplError('TARGET_NOT_EMPTY', `Cannot use ${what} "${dir}": it exists and is not a directory`)
      entries = await readdir(dir)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'absent'
      throw fromSystemError(err, `Cannot access ${what} "${dir}"`)
    }
    if (entries.length > 0) {
      throw new ReplError('TARGET_NOT_EMPTY', `${capitalize(what)} "${dir}" exists but is not empty`, {
        hint: 'Remove or empty it, or give another directory.',
      })
    }
    return 'empty'
  }

  /** Create `dir` (with parents) or take an empty existing one, and set its mode. */
  async prepare(dir: string, mode: number, what = 'directory'): Promise<void> {
    const state = await TargetDirs.checkUsable(dir, what)
    try {
      if (state === 'absent') {
        const first = await mkdir(dir, {recursive: true, mode})
        // mkdir -p reports the first directory it had to create: remove from there on failure.
        this.made.push(first ?? dir)
      } else {
        this.filled.push(dir)
      }
      await chmod(dir, mode)
    } catch (err) {
      throw fromSystemError(err, `Cannot create ${what} "${dir}"`)
    }
  }

  /** Remove what this run created; returns what was removed, for messages. */
  /** Remove what this run made; says only what really went (a read-only file system keeps it all). */
  async cleanup(): Promise<string[]> {
    const removed: string[] = []
    const gone = (path: string) => rm(path, {recursive: true, force: true}).then(() => true, () => false)
    for (const dir of [...this.made].reverse()) {
      if (await gone(dir)) removed.push(dir)
    }
    for (const dir of this.filled) {
      let all = true
      for (const entry of await readdir(dir).catch(() => [] as string[])) all = (await gone(join(dir, entry))) && all
      if (all) removed.push(`contents of ${dir}`)
    }
    return removed
  }
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1)
}
