import {readdir, stat} from 'node:fs/promises'
import {join} from 'node:path'

import {fromSystemError} from '../errors.js'
import {parseWalFileName, segmentStartLsn, type Lsn} from '../wal/lsn.js'

/** The newest WAL in a receivewal directory: what it holds complete, and when it was last written. */
export interface ArchiveState {
  /** Everything before this LSN is in complete segments or the .partial one's start. */
  archivedUpTo: Lsn | null
  /** Segment number of the newest file (complete or .partial). */
  newestSegno: bigint | null
  newestFile: string | null
  newestMtimeMs: number | null
}

const SEGMENT = /^([0-9A-F]{24})((?:\.gz|\.lz4|\.zst)?)(\.partial)?$/

export async function readArchive(dir: string, segmentSize: number): Promise<ArchiveState> {
  let names: string[]
  try {
    names = await readdir(dir)
  } catch (err) {
    throw fromSystemError(err, `Cannot read WAL directory "${dir}"`)
  }
  let best: {segno: bigint; timeline: number; partial: boolean; name: string} | undefined
  for (const name of names) {
    const m = SEGMENT.exec(name)
    if (!m) continue
    const parsed = parseWalFileName(m[1]!, segmentSize)
    if (!parsed) continue
    const partial = m[3] !== undefined
    const better = !best || parsed.segno > best.segno || (parsed.segno === best.segno && (parsed.timeline > best.timeline || (!partial && best.partial)))
    if (better) best = {...parsed, partial, name}
  }
  if (!best) return {archivedUpTo: null, newestSegno: null, newestFile: null, newestMtimeMs: null}
  const st = await stat(join(dir, best.name)).catch((err) => {
    throw fromSystemError(err, `Cannot read "${join(dir, best!.name)}"`)
  })
  return {
    archivedUpTo: segmentStartLsn(best.partial ? best.segno : best.segno + 1n, segmentSize),
    newestSegno: best.segno,
    newestFile: best.name,
    newestMtimeMs: st.mtimeMs,
  }
}

/** The newest backup_manifest in `dir` or in a directory directly under it. */
export async function newestManifest(dir: string): Promise<{path: string; mtimeMs: number} | null> {
  let entries: Array<import('node:fs').Dirent>
  try {
    entries = await readdir(dir, {withFileTypes: true})
  } catch (err) {
    throw fromSystemError(err, `Cannot read backup directory "${dir}"`)
  }
  const candidates = [join(dir, 'backup_manifest'), ...entries.filter((e) => e.isDirectory()).map((e) => join(dir, e.name, 'backup_manifest'))]
  let newest: {path: string; mtimeMs: number} | null = null
  for (const path of candidates) {
    const st = await stat(path).catch(() => undefined)
    if (st?.isFile() && (!newest || st.mtimeMs > newest.mtimeMs)) newest = {path, mtimeMs: st.mtimeMs}
  }
  return newest
}
