import {readdir, readFile} from 'node:fs/promises'
import {join} from 'node:path'

import {fromSystemError, ReplError} from '../errors.js'
import {parseLsn, parseWalFileName, XLOG_BLCKSZ, type Lsn} from '../wal/lsn.js'
import {readPageHeader, SIZE_OF_LONG_PAGE_HEADER, XLP_LONG_HEADER} from '../wal/page.js'
import {openSegmentFile, readSegmentSize, splitSegmentFileName, type SegmentCompression} from '../wal/segment-source.js'

/**
 * What a receivewal archive holds: segment files by timeline (plain, `.gz`, `.lz4`, each
 * possibly `.partial`) and timeline history files.
 */
export interface ArchivedSegment {
  file: string
  /** The canonical 24-digit name. */
  name: string
  timeline: number
  segno: bigint
  compression: SegmentCompression
  partial: boolean
}

export interface HistoryEntry {
  parent: number
  /** Where the parent timeline ended and this one's ancestor line switched. */
  switchpoint: Lsn
}

export interface ArchiveListing {
  segmentSize: number
  /** By timeline, each sorted by segment number (one file per segment: the best form). */
  timelines: Map<number, ArchivedSegment[]>
  /** History files present, by the timeline they describe. */
  histories: Map<number, {file: string; entries: HistoryEntry[] | undefined}>
  /** The same segment in more than one form (e.g. finished and .partial). */
  duplicates: string[]
}

const HISTORY_RE = /^([0-9A-F]{8})\.history$/

export async function listArchive(dir: string): Promise<ArchiveListing> {
  let names: string[]
  try {
    names = (await readdir(dir)).sort()
  } catch (err) {
    throw fromSystemError(err, `could not open directory "${dir}"`)
  }
  const found: Array<Omit<ArchivedSegment, 'timeline' | 'segno'>> = []
  const histories = new Map<number, {file: string; entries: HistoryEntry[] | undefined}>()
  for (const file of names) {
    const h = HISTORY_RE.exec(file)
    if (h) {
      histories.set(Number.parseInt(h[1]!, 16), {file, entries: parseHistory(await readFile(join(dir, file), 'utf8').catch(() => ''))})
      continue
    }
    const split = splitSegmentFileName(file)
    if (!split) continue
    const compression: SegmentCompression = split.suffix.startsWith('.gz') ? 'gzip' : split.suffix.startsWith('.lz4') ? 'lz4' : 'none'
    found.push({file, name: split.segmentName, compression, partial: split.suffix.endsWith('.partial')})
  }
  if (found.length === 0) throw new ReplError('INVALID_DATA', `no WAL segment files in "${dir}"`)
  const segmentSize = await readSegmentSize(join(dir, found[0]!.file), found[0]!.compression)
  const timelines = new Map<number, ArchivedSegment[]>()
  const duplicates: string[] = []
  for (const f of found) {
    const parsed = parseWalFileName(f.name, segmentSize)
    if (!parsed) continue
    const list = timelines.get(parsed.timeline) ?? []
    const previous = list.at(-1)
    const segment = {...f, ...parsed}
    if (previous && previous.segno === parsed.segno) {
      duplicates.push(f.file)
      // A finished segment wins over a .partial one, plain over compressed.
      if (previous.partial && !f.partial) list[list.length - 1] = segment
      continue
    }
    list.push(segment)
    timelines.set(parsed.timeline, list)
  }
  for (const list of timelines.values()) list.sort((a, b) => (a.segno < b.segno ? -1 : a.segno > b.segno ? 1 : 0))
  return {segmentSize, timelines, histories, duplicates}
}

/** `parentTLI<tab>switchpoint<tab>reason` lines; undefined when the file does not parse. */
export function parseHistory(text: string): HistoryEntry[] | undefined {
  const entries: HistoryEntry[] = []
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) continue
    const m = /^(\d+)\s+([0-9A-Fa-f]+\/[0-9A-Fa-f]+)/.exec(line)
    if (!m) return undefined
    entries.push({parent: Number(m[1]), switchpoint: parseLsn(m[2]!)})
  }
  return entries
}

/** The system identifier in a segment's first (long) page header, if it can be read. */
export async function segmentSystemIdentifier(dir: string, s: ArchivedSegment): Promise<bigint | undefined> {
  const file = await openSegmentFile(join(dir, s.file), s.name, s.compression).catch(() => undefined)
  if (!file) return undefined
  try {
    const page = new Uint8Array(XLOG_BLCKSZ)
    if ((await file.read(page, 0, 0, XLOG_BLCKSZ)) < SIZE_OF_LONG_PAGE_HEADER) return undefined
    const header = readPageHeader(page, 0)
    return header.info & XLP_LONG_HEADER ? header.systemIdentifier : undefined
  } catch {
    return undefined
  } finally {
    await file.close()
  }
}
