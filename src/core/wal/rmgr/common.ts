import {i32, i64n, u16, u32, u64n} from '../bytes.js'
import type {WalVersion} from '../page.js'
import {FORK_NAMES, type WalRecord} from '../record.js'

/**
 * Helpers shared by the rmgr descriptions: bounds-checked field access to a record's main
 * data or block data, and the formatting PostgreSQL's rmgrdesc code uses (relation paths,
 * timestamps, invalidation messages, bracketed lists).
 */

/**
 * A bounds-checked view of record bytes. Reads past the end return 0 (and strings stop):
 * descriptions of damaged-but-CRC-valid records print zeros instead of reading other memory.
 */
export class Fields {
  constructor(
    public b: Uint8Array,
    public base: number,
    public length: number,
  ) {}

  /** Point at other bytes (the description helpers reuse two instances). */
  reset(b: Uint8Array, base: number, length: number): this {
    this.b = b
    this.base = base
    this.length = length
    return this
  }

  has(o: number, size: number): boolean {
    return o >= 0 && o + size <= this.length
  }

  u8(o: number): number {
    return this.has(o, 1) ? this.b[this.base + o]! : 0
  }

  i8(o: number): number {
    return (this.u8(o) << 24) >> 24
  }

  u16(o: number): number {
    return this.has(o, 2) ? u16(this.b, this.base + o) : 0
  }

  u32(o: number): number {
    return this.has(o, 4) ? u32(this.b, this.base + o) : 0
  }

  i32(o: number): number {
    return this.has(o, 4) ? i32(this.b, this.base + o) : 0
  }

  u64n(o: number): number {
    return this.has(o, 8) ? u64n(this.b, this.base + o) : 0
  }

  i64n(o: number): number {
    return this.has(o, 8) ? i64n(this.b, this.base + o) : 0
  }

  /** NUL-terminated string starting at `o` (bytes as Latin-1 would lose UTF-8: decode it). */
  cstring(o: number, max = this.length - o): string {
    const start = this.base + o
    let end = start
    const limit = this.base + Math.min(this.length, o + Math.max(0, max))
    while (end < limit && this.b[end] !== 0) end++
    return Buffer.from(this.b.buffer, this.b.byteOffset + start, Math.max(0, end - start)).toString('utf8')
  }
}

// Descriptions run one at a time, so one view of main data and one of block data do.
const MAIN = new Fields(new Uint8Array(0), 0, 0)
const BLOCK = new Fields(new Uint8Array(0), 0, 0)

/** The record's main data (a shared view, valid until the next call). */
export function mainData(rec: WalRecord): Fields {
  return MAIN.reset(rec.buf, rec.off + rec.mainDataOffset, rec.mainDataLength)
}

/** Block `id`'s data (a shared view), or undefined when the block is absent or has none. */
export function blockData(rec: WalRecord, id: number): Fields | undefined {
  if (!rec.hasBlockRef(id)) return undefined
  const blk = rec.blocks[id]!
  if (!blk.hasData) return undefined
  return BLOCK.reset(rec.buf, rec.off + blk.dataOffset, blk.dataLength)
}

export function hex2(n: number): string {
  return n.toString(16).toUpperCase().padStart(2, '0')
}

export function lsnOf(n: number): string {
  return `${Math.floor(n / 4294967296).toString(16).toUpperCase()}/${(n >>> 0).toString(16).toUpperCase()}`
}

export function tf(b: boolean | number): string {
  return b ? 'T' : 'F'
}

const GLOBALTABLESPACE_OID = 1664
const DEFAULTTABLESPACE_OID = 1663

/** relpathperm(): where a relation fork lives under the data directory. */
export function relPath(v: WalVersion, spc: number, db: number, rel: number, fork: number): string {
  const suffix = fork === 0 ? '' : `_${FORK_NAMES[fork] ?? fork}`
  if (spc === GLOBALTABLESPACE_OID) return `global/${rel}${suffix}`
  if (spc === DEFAULTTABLESPACE_OID) return `base/${db}/${rel}${suffix}`
  return `pg_tblspc/${spc}/PG_${v.major}_${v.catalogVersion}/${db}/${rel}${suffix}`
}

/** Relation path of the 12-byte RelFileNode/RelFileLocator at `o`. */
export function relPathAt(v: WalVersion, f: Fields, o: number, fork = 0): string {
  return relPath(v, f.u32(o), f.u32(o + 4), f.u32(o + 8), fork)
}

/** "spc/db/rel" of the 12-byte RelFileNode/RelFileLocator at `o`. */
export function relTriple(f: Fields, o: number): string {
  return `${f.u32(o)}/${f.u32(o + 4)}/${f.u32(o + 8)}`
}

/** Seconds between 1970-01-01 and 2000-01-01, PostgreSQL's timestamp epoch. */
const POSTGRES_EPOCH_UNIX_SECONDS = 946684800

let zoneFormatter: Intl.DateTimeFormat | undefined
// Commit records come in bursts within the same second: format each second once.
let cachedSecond = Number.NaN
let cachedDate = ''
let cachedZone = ''

/** Fill the per-second cache for `usec`; false when beyond what a Date holds. */
function cacheSecond(usec: number): boolean {
  const secs = Math.trunc(usec / 1e6) + POSTGRES_EPOCH_UNIX_SECONDS
  if (secs === cachedSecond) return true
  const d = new Date(secs * 1000)
  if (Number.isNaN(d.getTime())) return false
  const p2 = (n: number): string => String(n).padStart(2, '0')
  zoneFormatter ??= new Intl.DateTimeFormat('en-US', {timeZoneName: 'short'})
  cachedZone = zoneFormatter.formatToParts(d).find((p) => p.type === 'timeZoneName')?.value ?? ''
  cachedDate = `${d.getFullYear()}-${p2(d.getMonth() + 1)}-${p2(d.getDate())} ${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())}`
  cachedSecond = secs
  return true
}

/**
 * pg_waldump's timestamptz_to_str: local time, microseconds, zone abbreviation, e.g.
 * "2024-05-01 12:00:00.123456 UTC". Abbreviations come from Intl and may differ from the C
 * library's for some zones ("GMT+1" rather than "CET"); UTC and US zones agree.
 */
export function timestamptzText(usec: number): string {
  // Beyond what a Date holds (a damaged record): show the raw value rather than fail.
  if (!cacheSecond(usec)) return `(timestamp ${usec})`
  const frac = usec % 1e6
  const fracText = frac < 0 ? `-${String(-frac).padStart(5, '0')}` : String(frac).padStart(6, '0')
  return `${cachedDate}.${fracText} ${cachedZone}`
}

/** timestamptzText() straight into a writer (commit records: one per transaction). */
export function writeTimestamptz(out: DescWriter, usec: number): void {
  const frac = usec % 1e6
  if (frac < 0 || !cacheSecond(usec)) {
    out.ascii(timestamptzText(usec))
    return
  }
  out.ascii(cachedDate).ascii('.')
  for (let d = 100000; d > frac && d > 1; d /= 10) out.ascii('0')
  out.dec(frac).ascii(' ').ascii(cachedZone)
}

/** SharedInvalidationMessage is a 16-byte union; its first byte says which member. */
export const SIZE_OF_INVAL_MESSAGE = 16

/**
 * standby_desc_invalidations(): used by commit, standby and (18+) inplace records.
 * Prints nothing when there are no messages.
 */
export function invalidationsText(f: Fields, o: number, nmsgs: number, dbId: number, tsId: number, relcacheInitFileInval: boolean): string {
  if (nmsgs <= 0) return ''
  let s = relcacheInitFileInval ? `; relcache init file inval dbid ${dbId} tsid ${tsId}` : ''
  s += '; inval msgs:'
  for (let i = 0; i < nmsgs; i++) {
    const m = o + i * SIZE_OF_INVAL_MESSAGE
    const id = f.i8(m)
    if (id >= 0) s += ` catcache ${id}`
    else if (id === -1) s += ` catalog ${f.u32(m + 8)}`
    else if (id === -2) s += ` relcache ${f.u32(m + 8)}`
    else if (id === -3) s += ' smgr'
    else if (id === -4) s += ` relmap db ${f.u32(m + 4)}`
    else if (id === -5) s += ` snapshot ${f.u32(m + 8)}`
    else if (id === -6) s += ` relsync ${f.u32(m + 8)}`
    else s += ` unrecognized id ${id}`
  }
  return s
}

/** array_desc() of 16+: " [a, b, c]" ("[]" when empty). */
export function bracketList(items: readonly (string | number)[]): string {
  return ` [${items.join(', ')}]`
}

/** `count` uint16 offsets starting at `o`. */
export function offsets(f: Fields, o: number, count: number): number[] {
  const out: number[] = []
  for (let i = 0; i < count; i++) out.push(f.u16(o + 2 * i))
  return out
}

/** "[A, B]" of the flag names set in `bits`, as 16+ prints flag sets. */
export function flagList(bits: number, names: ReadonlyArray<readonly [number, string]>): string {
  const set = names.filter(([bit]) => bits & bit).map(([, name]) => name)
  return `[${set.join(', ')}]`
}

/**
 * Where descriptions go. The output buffer implements it (printing writes bytes directly);
 * StringWriter collects a string (JSON, tests).
 */
export interface DescWriter {
  /** ASCII text. */
  ascii(s: string): DescWriter
  /** Any text. */
  text(s: string): DescWriter
  /** A non-negative integer in decimal. */
  dec(n: number): DescWriter
  /** An unsigned 32-bit integer in upper-case hex, zero-padded to `width`. */
  hex(n: number, width?: number): DescWriter
}

export class StringWriter implements DescWriter {
  value = ''
  ascii(s: string): this {
    this.value += s
    return this
  }
  text(s: string): this {
    this.value += s
    return this
  }
  dec(n: number): this {
    this.value += String(n)
    return this
  }
  hex(n: number, width = 1): this {
    this.value += (n >>> 0).toString(16).toUpperCase().padStart(width, '0')
    return this
  }
}

/** An rmgr description table entry: record-type names and details per WAL version. */
export interface RmgrDesc {
  readonly name: string
  /** Record-type name for the full xl_info byte, or undefined when unknown to that version. */
  identify(info: number, v: WalVersion): string | undefined
  /** Write the details after the record-type name (nothing when there are none). */
  write(rec: WalRecord, out: DescWriter): void
}

/** For rmgrs whose descriptions are rare enough to build as strings. */
export function fromText(describe: (rec: WalRecord) => string): (rec: WalRecord, out: DescWriter) => void {
  return (rec, out) => {
    const s = describe(rec)
    if (s) out.text(s)
  }
}

/** Build identify() from a table of rmgr-info values (masking the low 4 bits unless told). */
export function identifyFrom(
  table: (v: WalVersion) => Readonly<Record<number, string>>,
  options: {mask?: number} = {},
): (info: number, v: WalVersion) => string | undefined {
  const mask = options.mask ?? 0xf0
  return (info, v) => table(v)[info & mask]
}
