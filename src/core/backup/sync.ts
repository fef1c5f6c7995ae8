import {lstat, open, readdir, stat} from 'node:fs/promises'
import {join} from 'node:path'

import {mapLimited} from '../concurrency.js'
import {fromSystemError} from '../errors.js'

/**
 * Make a finished backup durable: fsync every file, then every directory, like initdb's and
 * pg_basebackup's fsync of a data directory. pg_wal and the links in pg_tblspc are followed;
 * other symbolic links are not. Several fsyncs run at once: the disk sorts them out faster
 * than one at a time.
 */
const PARALLEL = 8

export async function syncTree(root: string): Promise<void> {
  const files: string[] = []
  const dirs: string[] = []
  await collect(root, '', files, dirs)
  await mapLimited(files, PARALLEL, syncPath)
  await mapLimited(dirs.reverse(), PARALLEL, syncPath)
}

/** fsync a list of files and then the directories holding them. */
export async function syncFiles(files: string[], dirs: string[]): Promise<void> {
  await mapLimited(files, PARALLEL, syncPath)
  await mapLimited(dirs, PARALLEL, syncPath)
}

async function collect(dir: string, rel: string, files: string[], dirs: string[]): Promise<void> {
  dirs.push(dir)
  let entries
  try {
    entries = await readdir(dir, {withFileTypes: true})
  } catch (err) {
    throw fromSystemError(err, `Cannot read directory "${dir}"`)
  }
  for (const e of entries) {
    const path = join(dir, e.name)
    const relPath = rel ? `${rel}/${e.name}` : e.name
    if (e.isDirectory()) await collect(path, relPath, files, dirs)
    else if (e.isFile()) files.push(path)
    else if (e.isSymbolicLink() && (relPath === 'pg_wal' || /^pg_tblspc\/[^/]+$/.test(relPath))) {
      const target = await stat(path).catch(() => undefined)
      if (target?.isDirectory()) await collect(path, relPath, files, dirs)
    }
  }
}

/** fsync one file or directory (a directory that cannot be fsynced is skipped). */
export async function syncPath(path: string): Promise<void> {
  let fh
  try {
    fh = await open(path, 'r')
    await fh.sync()
  } catch (err) {
    // A directory that cannot be fsynced on this file system is not an error (as in PostgreSQL).
    const code = (err as NodeJS.ErrnoException).code
    if ((code === 'EINVAL' || code === 'EISDIR') && (await lstat(path).catch(() => undefined))?.isDirectory()) return
    throw fromSystemError(err, `Cannot fsync "${path}"`)
  } finally {
    await fh?.close().catch(() => {})
  }
}

