import type {WalVersion} from '../page.js'
import type {WalRecord} from '../record.js'
import {Fields, identifyFrom, invalidationsText, lsnOf, mainData, relPathAt, SIZE_OF_INVAL_MESSAGE, timestamptzText, writeTimestamptz, type RmgrDesc, fromText} from './common.js'

export const XLOG_XACT_COMMIT = 0x00
export const XLOG_XACT_PREPARE = 0x10
export const XLOG_XACT_ABORT = 0x20
export const XLOG_XACT_COMMIT_PREPARED = 0x30
export const XLOG_XACT_ABORT_PREPARED = 0x40
export const XLOG_XACT_ASSIGNMENT = 0x50
export const XLOG_XACT_INVALIDATIONS = 0x60
export const XLOG_XACT_OPMASK = 0x70
export const XLOG_XACT_HAS_INFO = 0x80

const XINFO_HAS_DBINFO = 1 << 0
const XINFO_HAS_SUBXACTS = 1 << 1
const XINFO_HAS_RELFILENODES = 1 << 2
const XINFO_HAS_INVALS = 1 << 3
const XINFO_HAS_TWOPHASE = 1 << 4
const XINFO_HAS_ORIGIN = 1 << 5
const XINFO_HAS_GID = 1 << 7
const XINFO_HAS_DROPPED_STATS = 1 << 8
const COMPLETION_APPLY_FEEDBACK = 1 << 29
const COMPLETION_UPDATE_RELCACHE_FILE = 1 << 30
const COMPLETION_FORCE_SYNC_COMMIT = 2 ** 31

const NAMES_13: Record<number, string> = {
  [XLOG_XACT_COMMIT]: 'COMMIT',
  [XLOG_XACT_PREPARE]: 'PREPARE',
  [XLOG_XACT_ABORT]: 'ABORT',
  [XLOG_XACT_COMMIT_PREPARED]: 'COMMIT_PREPARED',
  [XLOG_XACT_ABORT_PREPARED]: 'ABORT_PREPARED',
  [XLOG_XACT_ASSIGNMENT]: 'ASSIGNMENT',
}
const NAMES_14 = {...NAMES_13, [XLOG_XACT_INVALIDATIONS]: 'INVALIDATION'}

const RELFILENODE_SIZE = 12

function statsItemSize(v: WalVersion): number {
  return v.statsObjid64 ? 16 : 12
}

/** A commit or abort record, parsed (ParseCommitRecord / ParseAbortRecord). */
export interface CompletionRecord {
  time: number
  xinfo: number
  dbId: number
  tsId: number
  subxacts: number[]
  /** Offsets (in main data) and count of dropped relations. */
  relsAt: number
  nrels: number
  statsAt: number
  nstats: number
  msgsAt: number
  nmsgs: number
  twophaseXid: number
  gid: string
  originLsn: number
  originTime: number
}

export function parseCompletion(rec: WalRecord, isCommit: boolean): CompletionRecord {
  const f = mainData(rec)
  const v = rec.version
  const r: CompletionRecord = {
    time: f.i64n(0),
    xinfo: 0,
    dbId: 0,
    tsId: 0,
    subxacts: [],
    relsAt: 0,
    nrels: 0,
    statsAt: 0,
    nstats: 0,
    msgsAt: 0,
    nmsgs: 0,
    twophaseXid: 0,
    gid: '',
    originLsn: 0,
    originTime: 0,
  }
  let p = 8
  if (rec.info & XLOG_XACT_HAS_INFO) {
    r.xinfo = f.u32(p)
    p += 4
  }
  if (r.xinfo & XINFO_HAS_DBINFO) {
    r.dbId = f.u32(p)
    r.tsId = f.u32(p + 4)
    p += 8
  }
  if (r.xinfo & XINFO_HAS_SUBXACTS) {
    const n = boundedCount(f, p, 4)
    for (let i = 0; i < n; i++) r.subxacts.push(f.u32(p + 4 + 4 * i))
    p += 4 + 4 * n
  }
  if (r.xinfo & XINFO_HAS_RELFILENODES) {
    r.nrels = boundedCount(f, p, RELFILENODE_SIZE)
    r.relsAt = p + 4
    p += 4 + RELFILENODE_SIZE * r.nrels
  }
  if (v.droppedStats && r.xinfo & XINFO_HAS_DROPPED_STATS) {
    r.nstats = boundedCount(f, p, statsItemSize(v))
    r.statsAt = p + 4
    p += 4 + statsItemSize(v) * r.nstats
  }
  if (isCommit && r.xinfo & XINFO_HAS_INVALS) {
    r.nmsgs = boundedCount(f, p, SIZE_OF_INVAL_MESSAGE)
    r.msgsAt = p + 4
    p += 4 + SIZE_OF_INVAL_MESSAGE * r.nmsgs
  }
  if (r.xinfo & XINFO_HAS_TWOPHASE) {
    r.twophaseXid = f.u32(p)
    p += 4
    if (r.xinfo & XINFO_HAS_GID) {
      r.gid = f.cstring(p, 200)
      p += Buffer.byteLength(r.gid) + 1
    }
  }
  if (r.xinfo & XINFO_HAS_ORIGIN) {
    r.originLsn = f.u64n(p)
    r.originTime = f.i64n(p + 8)
  }
  return r
}

/** A count field followed by `size`-byte items, clamped to what the data can hold. */
function boundedCount(f: Fields, p: number, size: number): number {
  const n = f.i32(p)
  return Math.max(0, Math.min(n, Math.floor((f.length - p - 4) / size)))
}

function relsText(rec: WalRecord, f: Fields, label: string, at: number, n: number): string {
  if (n <= 0) return ''
  let s = `; ${label}:`
  for (let i = 0; i < n; i++) s += ` ${relPathAt(rec.version, f, at + RELFILENODE_SIZE * i)}`
  return s
}

function subxactsText(subxacts: number[]): string {
  return subxacts.length > 0 ? `; subxacts: ${subxacts.join(' ')}` : ''
}

function statsText(v: WalVersion, f: Fields, label: string, at: number, n: number): string {
  if (n <= 0) return ''
  const size = statsItemSize(v)
  let s = `; ${label}dropped stats:`
  for (let i = 0; i < n; i++) {
    const o = at + size * i
    const objid = v.statsObjid64 ? f.u64n(o + 8) : f.u32(o + 8)
    s += ` ${f.i32(o)}/${f.u32(o + 4)}/${objid}`
  }
  return s
}

function originText(origin: number, lsn: number, time: number): string {
  return `; origin: node ${origin}, lsn ${lsnOf(lsn)}, at ${timestamptzText(time)}`
}

/** What commit and abort descriptions start with: the prepared xid, time, rels, subxacts. */
function completionHead(rec: WalRecord, f: Fields, c: CompletionRecord): string {
  const s = c.twophaseXid ? `${c.twophaseXid}: ` : ''
  return s + timestamptzText(c.time) + relsText(rec, f, 'rels', c.relsAt, c.nrels) + subxactsText(c.subxacts)
}

function describeCommit(rec: WalRecord): string {
  const v = rec.version
  const f = mainData(rec)
  const c = parseCompletion(rec, true)
  let s = completionHead(rec, f, c)
  s += statsText(v, f, '', c.statsAt, c.nstats)
  s += invalidationsText(f, c.msgsAt, c.nmsgs, c.dbId, c.tsId, (c.xinfo & COMPLETION_UPDATE_RELCACHE_FILE) !== 0)
  if (v.xactOriginAndFeedback && c.xinfo & COMPLETION_APPLY_FEEDBACK) s += '; apply_feedback'
  if (c.xinfo & COMPLETION_FORCE_SYNC_COMMIT) s += '; sync'
  if (c.xinfo & XINFO_HAS_ORIGIN) s += originText(rec.origin, c.originLsn, c.originTime)
  return s
}

function describeAbort(rec: WalRecord): string {
  const v = rec.version
  const f = mainData(rec)
  const c = parseCompletion(rec, false)
  let s = completionHead(rec, f, c)
  if (v.xactOriginAndFeedback && c.xinfo & XINFO_HAS_ORIGIN) s += originText(rec.origin, c.originLsn, c.originTime)
  s += statsText(v, f, '', c.statsAt, c.nstats)
  return s
}

function maxalign(n: number): number {
  return n + ((8 - (n % 8)) % 8)
}

/** xl_xact_prepare: the two-phase state file header, then gid, subxacts, rels, stats, invals. */
function describePrepare(rec: WalRecord): string {
  const v = rec.version
  const f = mainData(rec)
  const hasStats = v.prepareStatsFields
  const nsubxacts = f.i32(28)
  const ncommitrels = f.i32(32)
  const nabortrels = f.i32(36)
  const ncommitstats = hasStats ? f.i32(40) : 0
  const nabortstats = hasStats ? f.i32(44) : 0
  const ninvalmsgs = f.i32(hasStats ? 48 : 40)
  const initfileinval = f.u8(hasStats ? 52 : 44) !== 0
  const gidlen = f.u16(hasStats ? 54 : 46)
  const originLsn = f.u64n(hasStats ? 56 : 48)
  const originTime = f.i64n(hasStats ? 64 : 56)
  let p = hasStats ? 72 : 64
  const gid = f.cstring(p, gidlen)
  p += maxalign(gidlen)
  const subxacts: number[] = []
  for (let i = 0; i < nsubxacts && f.has(p + 4 * i, 4); i++) subxacts.push(f.u32(p + 4 * i))
  p += maxalign(4 * Math.max(0, nsubxacts))
  const commitRels = p
  p += maxalign(RELFILENODE_SIZE * Math.max(0, ncommitrels))
  const abortRels = p
  p += maxalign(RELFILENODE_SIZE * Math.max(0, nabortrels))
  const size = statsItemSize(v)
  const commitStats = p
  p += maxalign(size * Math.max(0, ncommitstats))
  const abortStats = p
  p += maxalign(size * Math.max(0, nabortstats))
  const msgs = p
  const clamp = (at: number, n: number, sz: number): number => Math.max(0, Math.min(n, Math.floor((f.length - at) / sz)))

  let s = `gid ${gid}: ${timestamptzText(f.i64n(16))}`
  s += relsText(rec, f, 'rels(commit)', commitRels, clamp(commitRels, ncommitrels, RELFILENODE_SIZE))
  s += relsText(rec, f, 'rels(abort)', abortRels, clamp(abortRels, nabortrels, RELFILENODE_SIZE))
  if (v.prepareShowsStats) {
    s += statsText(v, f, 'commit ', commitStats, clamp(commitStats, ncommitstats, size))
    s += statsText(v, f, 'abort ', abortStats, clamp(abortStats, nabortstats, size))
  }
  s += subxactsText(subxacts)
  s += invalidationsText(f, msgs, clamp(msgs, ninvalmsgs, SIZE_OF_INVAL_MESSAGE), f.u32(12), 0, initfileinval)
  if (v.xactOriginAndFeedback && rec.origin !== 0) s += originText(rec.origin, originLsn, originTime)
  return s
}

function describe(rec: WalRecord): string {
  const info = rec.info & XLOG_XACT_OPMASK
  const f = mainData(rec)
  switch (info) {
    case XLOG_XACT_COMMIT:
    case XLOG_XACT_COMMIT_PREPARED:
      return describeCommit(rec)
    case XLOG_XACT_ABORT:
    case XLOG_XACT_ABORT_PREPARED:
      return describeAbort(rec)
    case XLOG_XACT_PREPARE:
      return describePrepare(rec)
    case XLOG_XACT_ASSIGNMENT: {
      const n = boundedCount(f, 4, 4)
      let s = `xtop ${f.u32(0)}: subxacts:`
      for (let i = 0; i < n; i++) s += ` ${f.u32(8 + 4 * i)}`
      return s
    }
    case XLOG_XACT_INVALIDATIONS:
      if (!rec.version.xactInvalidations) return ''
      return invalidationsText(f, 4, boundedCount(f, 0, SIZE_OF_INVAL_MESSAGE), 0, 0, false)
    default:
      return ''
  }
}

const writeOther = fromText(describe)

export const xactRmgr: RmgrDesc = {
  name: 'Transaction',
  identify: identifyFrom((v) => (v.xactInvalidations ? NAMES_14 : NAMES_13), {mask: XLOG_XACT_OPMASK}),
  write(rec, out) {
    const op = rec.info & XLOG_XACT_OPMASK
    // Most commits and aborts carry only their time: print it without parsing the rest.
    if ((op === XLOG_XACT_COMMIT || op === XLOG_XACT_ABORT) && !(rec.info & XLOG_XACT_HAS_INFO)) writeTimestamptz(out, mainData(rec).i64n(0))
    else writeOther(rec, out)
  },
}
