import {readdir, readFile, stat} from 'node:fs/promises'
import {join} from 'node:path'

import {fromSystemError, ReplError} from '../errors.js'
import {splitSegmentFileName, type SegmentCompression} from '../wal/segment-source.js'

/**
 * The WAL a replay can draw on, as the server looks for it: the archive directory first
 * (what restore_command serves: plain, .gz, .lz4 and .partial files as receivewal writes
 * them), then the backup's own pg_wal (plain files under their exact names only, which is all
 * the server reads there).
 */
export interface WalFile {
  /** 24-hex-digit segment name, without suffixes. */
  name: string
  path: string
  compression: SegmentCompression
  /** A segment receivewal had not finished: valid WAL up to some point, then zeros or nothing. */
  partial: boolean
  /** Size on disk. */
  size: number
  source: 'archive' | 'backup'
}

/** Best first: a finished plain segment, then compressed ones, then unfinished ones. */
const SUFFIX_PREFERENCE = ['', '.gz', '.lz4', '.partial', '.gz.partial', '.lz4.partial']

export class WalSources {
  private constructor(
    readonly archiveDir: string,
    readonly pgWalDir: string,
    private readonly archive: Map<string, WalFile>,
    private readonly backup: Map<string, WalFile>,
    /** History files by timeline: path of the archive's copy, else the backup's. */
    readonly histories: Map<number, string>,
  ) {}

  static async scan(archiveDir: string, pgWalDir: string): Promise<WalSources> {
    const archive = new Map<string, WalFile>()
    const backup = new Map<string, WalFile>()
    const histories = new Map<number, string>()
    let entries: string[]
    try {
      entries = await readdir(archiveDir)
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'ENOENT' || code === 'ENOTDIR') throw new ReplError('INVALID_ARGUMENT', `WAL directory ${archiveDir} does not exist`)
      throw fromSystemError(err, `Cannot read WAL directory ${archiveDir}`)
    }
    for (const entry of entries) {
      const split = splitSegmentFileName(entry)
      if (!split) {
        const history = /^([0-9A-F]{8})\.history$/.exec(entry)
        if (history) histories.set(Number.parseInt(history[1]!, 16), join(archiveDir, entry))
        continue
      }
      const rank = SUFFIX_PREFERENCE.indexOf(split.suffix)
      const current = archive.get(split.segmentName)
      if (current && SUFFIX_PREFERENCE.indexOf(suffixOf(current)) <= rank) continue
      const path = join(archiveDir, entry)
      archive.set(split.segmentName, {
        name: split.segmentName,
        path,
        compression: split.suffix.startsWith('.gz') ? 'gzip' : split.suffix.startsWith('.lz4') ? 'lz4' : 'none',
        partial: split.suffix.endsWith('.partial'),
        size: (await stat(path)).size,
        source: 'archive',
      })
    }
    for (const entry of await readdir(pgWalDir).catch(() => [] as string[])) {
      if (/^[0-9A-F]{24}$/.test(entry)) {
        const path = join(pgWalDir, entry)
        backup.set(entry, {name: entry, path, compression: 'none', partial: false, size: (await stat(path)).size, source: 'backup'})
      } else {
        const history = /^([0-9A-F]{8})\.history$/.exec(entry)
        if (history && !histories.has(Number.parseInt(history[1]!, 16))) histories.set(Number.parseInt(history[1]!, 16), join(pgWalDir, entry))
      }
    }
    return new WalSources(archiveDir, pgWalDir, archive, backup, histories)
  }

  /** Where the server would get this segment: the archive, else the backup's pg_wal. */
  find(name: string): WalFile | undefined {
    return this.archive.get(name) ?? this.backup.get(name)
  }

  /** The archive's file for a segment name (what restore_command can serve). */
  inArchive(name: string): WalFile | undefined {
    return this.archive.get(name)
  }

  /** Every segment name either source has. */
  *names(): Iterable<string> {
    yield* this.archive.keys()
    for (const name of this.backup.keys()) if (!this.archive.has(name)) yield name
  }

  hasHistory(timeline: number): boolean {
    return this.histories.has(timeline)
  }

  async readHistory(timeline: number): Promise<string | undefined> {
    const path = this.histories.get(timeline)
    if (!path) return undefined
    try {
      return await readFile(path, 'utf8')
    } catch (err) {
      throw fromSystemError(err, `Cannot read timeline history file ${path}`)
    }
  }
}

function suffixOf(f: WalFile): string {
  return f.path.slice(f.path.lastIndexOf('/') + 1 + f.name.length)
}
