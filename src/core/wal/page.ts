import {u32} from './bytes.js'

/**
 * WAL page headers and the per-version capability table.
 *
 * Every 8 kB WAL page starts with a header: magic (which names the WAL format version),
 * flags, timeline, the page's own address and how many bytes of a record continue from the
 * previous page. The first page of a segment carries a long header that also records the
 * system identifier, the segment size and the block size.
 */

export const SIZE_OF_SHORT_PAGE_HEADER = 24 // MAXALIGN(20)
export const SIZE_OF_LONG_PAGE_HEADER = 40 // MAXALIGN(36)

export const XLP_FIRST_IS_CONTRECORD = 0x0001
export const XLP_LONG_HEADER = 0x0002
export const XLP_FIRST_IS_OVERWRITE_CONTRECORD = 0x0008
/** The four flags, XLP_BKP_REMOVABLE (0x0004, unused here) included. */
export const XLP_ALL_FLAGS = 0x000f

/**
 * What differs between the WAL formats of the supported majors. Record decoding, statistics
 * and descriptions consult this table instead of comparing version numbers, so a new major is
 * one new row. Each flag names the major where the behaviour appeared (checked against the
 * REL_xx_STABLE sources).
 */
export interface WalVersion {
  major: number
  /** XLOG_PAGE_MAGIC of that major. */
  magic: number
  /** CATALOG_VERSION_NO, which names tablespace directories (PG_<major>_<catversion>). */
  catalogVersion: number
  /** Block id 252 carries the top-level xid of a subtransaction's first record (14+). */
  toplevelXidBlock: boolean
  /** bimg_info bits of full-page images; 15 added lz4/zstd and moved BKPIMAGE_APPLY. */
  fpi: FpiFlags
  /** Rmgr ids 128..255 belong to extensions (15+). */
  customRmgrs: boolean
  /** --stats prints a "WAL statistics between X and Y:" title (15+). */
  statsTitle: boolean
  /** --stats=record groups Transaction records by opcode, ignoring the has-info bit (14+). */
  statsXactByOpcode: boolean
  /** Descriptions use "key: value, ..." and list offsets (16+). */
  labelledDescs: boolean
  /** Heap2 has CLEAN/CLEANUP_INFO (13) instead of PRUNE/VACUUM (14-16) or the merged
   * PRUNE_* records (17+). */
  heap2Pruning: 'clean' | 'prune-vacuum' | 'prune-freeze'
  /** Checkpoint and end-of-recovery records include wal_level; CHECKPOINT_REDO exists (17+). */
  checkpointWalLevel: boolean
  /** CREATE DATABASE is logged as CREATE_FILE_COPY or CREATE_WAL_LOG (15+). */
  dbaseWalLogStrategy: boolean
  /** Commit/abort/prepare records may list dropped statistics (15+). */
  droppedStats: boolean
  /** PREPARE descriptions show dropped statistics (15 and 18; 16-17 do not parse them). */
  prepareShowsStats: boolean
  /** Dropped-stats items carry a 64-bit object id split in two words (18+). */
  statsObjid64: boolean
  /** xl_xact_prepare has the ncommitstats/nabortstats fields (15+). */
  prepareStatsFields: boolean
  /** Commit shows apply_feedback, abort and prepare show the replication origin (15+). */
  xactOriginAndFeedback: boolean
  /** Transaction INVALIDATION records (14+). */
  xactInvalidations: boolean
  /** Commit-timestamp SETTS records (13 only). */
  commitTsSetts: boolean
  /** Btree page deletion records carry a full safexid (14+). */
  btreeSafexid: boolean
  /** Btree DELETE/REUSE_PAGE and heap prune records carry isCatalogRel (16+ in the struct,
   * shown from 17). */
  showIsCatalogRel: boolean
  /** Running-xacts descriptions list subxids, overflow spelled out (16+). */
  runningXactsSubxids: boolean
  /** Heap INPLACE records carry invalidation messages (18+). */
  inplaceInvals: boolean
  /** SLRU page numbers in clog/commit_ts/multixact records are 64-bit (17+). */
  slruPage64: boolean
  /** Logical messages show prefix and payload bytes (14+). */
  logicalMessagePayload: boolean
}

export interface FpiFlags {
  hasHole: number
  apply: number
  /** Any of these set means the image is compressed. */
  compressed: number
  pglz: number
  lz4: number
  zstd: number
}

const FPI_13: FpiFlags = {hasHole: 0x01, apply: 0x04, compressed: 0x02, pglz: 0x02, lz4: 0, zstd: 0}
const FPI_15: FpiFlags = {hasHole: 0x01, apply: 0x02, compressed: 0x1c, pglz: 0x04, lz4: 0x08, zstd: 0x10}

function row(major: number, magic: number, catalogVersion: number): WalVersion {
  return {
    major,
    magic,
    catalogVersion,
    toplevelXidBlock: major >= 14,
    fpi: major >= 15 ? FPI_15 : FPI_13,
    customRmgrs: major >= 15,
    statsTitle: major >= 15,
    statsXactByOpcode: major >= 14,
    labelledDescs: major >= 16,
    heap2Pruning: major >= 17 ? 'prune-freeze' : major >= 14 ? 'prune-vacuum' : 'clean',
    checkpointWalLevel: major >= 17,
    dbaseWalLogStrategy: major >= 15,
    droppedStats: major >= 15,
    prepareShowsStats: major === 15 || major >= 18,
    statsObjid64: major >= 18,
    prepareStatsFields: major >= 15,
    xactOriginAndFeedback: major >= 15,
    xactInvalidations: major >= 14,
    commitTsSetts: major === 13,
    btreeSafexid: major >= 14,
    showIsCatalogRel: major >= 17,
    runningXactsSubxids: major >= 16,
    inplaceInvals: major >= 18,
    slruPage64: major >= 17,
    logicalMessagePayload: major >= 14,
  }
}

/** The supported majors, oldest first. The table is the only place majors are compared. */
export const WAL_VERSIONS: readonly WalVersion[] = [
  row(13, 0xd106, 202007201),
  row(14, 0xd10d, 202107181),
  row(15, 0xd110, 202209061),
  row(16, 0xd113, 202307071),
  row(17, 0xd116, 202406281),
  row(18, 0xd118, 202506291),
]

export function walVersionByMagic(magic: number): WalVersion | undefined {
  for (const v of WAL_VERSIONS) if (v.magic === magic) return v
  return undefined
}

export function walVersionByMajor(major: number): WalVersion | undefined {
  for (const v of WAL_VERSIONS) if (v.major === major) return v
  return undefined
}

/** A parsed page header. Mutable and reused by the reader. */
export interface PageHeader {
  magic: number
  info: number
  timeline: number
  /** xlp_pageaddr, as a Number (exact below 2^53). */
  pageAddress: number
  remainingLength: number
  /** Size of this header: 24, or 40 for long headers. */
  size: number
  /** Long header fields (0 when short). */
  systemIdentifier: bigint
  segmentSize: number
  blockSize: number
}

export function newPageHeader(): PageHeader {
  return {magic: 0, info: 0, timeline: 0, pageAddress: 0, remainingLength: 0, size: 0, systemIdentifier: 0n, segmentSize: 0, blockSize: 0}
}

/** Parse the header at `buf[off]`; the caller guarantees 24 bytes (40 if long) are present. */
export function readPageHeader(buf: Uint8Array, off: number, into: PageHeader = newPageHeader()): PageHeader {
  into.magic = buf[off]! | (buf[off + 1]! << 8)
  into.info = buf[off + 2]! | (buf[off + 3]! << 8)
  into.timeline = u32(buf, off + 4)
  into.pageAddress = u32(buf, off + 12) * 4294967296 + u32(buf, off + 8)
  into.remainingLength = u32(buf, off + 16)
  if (into.info & XLP_LONG_HEADER) {
    into.size = SIZE_OF_LONG_PAGE_HEADER
    into.systemIdentifier = (BigInt(u32(buf, off + 28)) << 32n) | BigInt(u32(buf, off + 24))
    into.segmentSize = u32(buf, off + 32)
    into.blockSize = u32(buf, off + 36)
  } else {
    into.size = SIZE_OF_SHORT_PAGE_HEADER
    into.systemIdentifier = 0n
    into.segmentSize = 0
    into.blockSize = 0
  }
  return into
}

/** Page header size implied by the flag bits at `buf[off]`. */
export function pageHeaderSizeAt(buf: Uint8Array, off: number): number {
  return buf[off + 2]! & XLP_LONG_HEADER ? SIZE_OF_LONG_PAGE_HEADER : SIZE_OF_SHORT_PAGE_HEADER
}

