import {HEX, OutputBuffer, putBytes, putDec, putDecPad, putDecRight, putHex8, putLsn08} from './output-buffer.js'
import {BLCKSZ, fpiCompression, lsnText, type BlockRef, type WalRecord} from '../wal/record.js'
import {describeRecord, recordTypeName, rmgrById} from '../wal/rmgr/index.js'

/**
 * pg_waldump's per-record text:
 *
 *   rmgr: Heap        len (rec/tot):     59/    59, tx:        735, lsn: 0/01A2B3C8, prev 0/01A2B390, desc: INSERT off 5 flags 0x00, blkref #0: rel 1663/5/16384 blk 0
 *
 * Strings are only built here, when a record is printed.
 */

const ascii = (s: string): Buffer => Buffer.from(s, 'latin1')
const TX_PREFIX = ascii(', tx: ')
const LSN_PREFIX = ascii(', lsn: ')
const PREV_PREFIX = ascii(', prev ')
const DESC_PREFIX = ascii(', desc: ')

// The constant pieces of a line, encoded once: the whole fixed-width start of a line per rmgr
// ("rmgr: Heap        len (rec/tot):       /      , tx:           , lsn: 0/00000000, prev
// 0/00000000, desc: "), and "INSERT " per version, rmgr and info byte.
const HEADER_TEMPLATE = 'len (rec/tot):       /      , tx:           , lsn: 0/00000000, prev 0/00000000, desc: '
const RMGR_COLUMN = 6 + 11 + 1 // "rmgr: " + name padded to 11 + " "
const REC_END = RMGR_COLUMN + 21 // right edge of the six-column record length
const TOT_END = REC_END + 7
const XID_END = TOT_END + 16
const LSN_LO = XID_END + 9 // first of the eight low hex digits of the LSN
const PREV_LO = LSN_LO + 17
const HEADER_LENGTH = RMGR_COLUMN + HEADER_TEMPLATE.length
const headers = new Map<number, Buffer>()
const typeNames = new Map<number, Buffer>()

function header(rmid: number): Buffer {
  let b = headers.get(rmid)
  if (!b) {
    b = ascii(`rmgr: ${rmgrById(rmid).name.padEnd(11)} ${HEADER_TEMPLATE}`)
    headers.set(rmid, b)
  }
  return b
}

function typeName(rec: WalRecord): Buffer {
  const key = (rec.version.magic << 16) | (rec.rmid << 8) | rec.info
  let b = typeNames.get(key)
  if (!b) {
    b = ascii(`${recordTypeName(rec)} `)
    typeNames.set(key, b)
  }
  return b
}

/** One record as pg_waldump prints it, including the trailing newline. */
export function writeRecord(out: OutputBuffer, rec: WalRecord, bkpDetails: boolean): void {
  const type = typeName(rec)
  const rmgrName = rmgrById(rec.rmid).name
  const lsn = rec.lsn
  const prev = rec.prevLsn
  const recLen = rec.recordLength
  const totLen = rec.totalLength
  out.ensure(HEADER_LENGTH + 64 + type.length)
  const buf = out.buf
  let p = out.len
  if (recLen < 1e6 && totLen < 1e6 && lsn < 2 ** 36 && prev < 2 ** 36 && rmgrName.length <= 11) {
    // Fixed widths (the usual case): copy the template, then fill in the digits.
    buf.set(header(rec.rmid), p)
    putDecRight(buf, p + REC_END, recLen)
    putDecRight(buf, p + TOT_END, totLen)
    putDecRight(buf, p + XID_END, rec.xid)
    putLsnFixed(buf, p + LSN_LO, lsn)
    putLsnFixed(buf, p + PREV_LO, prev)
    p += HEADER_LENGTH
  } else {
    p = putBytes(buf, p, ascii(`rmgr: ${rmgrName.padEnd(11)} len (rec/tot): `))
    p = putDecPad(buf, p, recLen, 6)
    buf[p++] = 0x2f
    p = putDecPad(buf, p, totLen, 6)
    p = putBytes(buf, p, TX_PREFIX)
    p = putDecPad(buf, p, rec.xid, 10)
    p = putBytes(buf, p, LSN_PREFIX)
    p = putLsn08(buf, p, lsn)
    p = putBytes(buf, p, PREV_PREFIX)
    p = putLsn08(buf, p, prev)
    p = putBytes(buf, p, DESC_PREFIX)
  }
  buf.set(type, p)
  out.len = p + type.length
  rmgrById(rec.rmid).write(rec, out)
  if (bkpDetails) writeBlockRefsDetailed(out, rec)
  else writeBlockRefsShort(out, rec)
}

/** An LSN below 2^36 into the template's "0/00000000" ending 8 digits after `lo - 2`. */
function putLsnFixed(buf: Uint8Array, lo: number, lsn: number): void {
  buf[lo - 2] = HEX[Math.floor(lsn / 4294967296)]!
  putHex8(buf, lo, lsn >>> 0)
}

/** The same as a string (tests, single records). */
export function formatRecord(rec: WalRecord, bkpDetails: boolean): string {
  const chunks: Buffer[] = []
  const out = OutputBuffer.collecting(chunks, 4096)
  writeRecord(out, rec, bkpDetails)
  out.flush()
  return Buffer.concat(chunks).toString('utf8')
}

const BLKREF = ascii('blkref #')

// ": rel 1663/5/16384" per relation, encoded once: a workload touches few relations.
const relTexts = new Map<number, {spc: number; db: number; text: Buffer}>()

function relText(b: BlockRef): Buffer {
  const hit = relTexts.get(b.relNumber)
  if (hit && hit.spc === b.spcOid && hit.db === b.dbOid) return hit.text
  const text = ascii(`: rel ${b.spcOid}/${b.dbOid}/${b.relNumber}`)
  if (relTexts.size > 4096) relTexts.clear()
  relTexts.set(b.relNumber, {spc: b.spcOid, db: b.dbOid, text})
  return text
}

/** `prefix` + "N: rel T/D/R" (prefix "blkref #" or ", blkref #"). */
function writeRel(out: OutputBuffer, prefix: Buffer, id: number, b: BlockRef): void {
  const rel = relText(b)
  out.ensure(prefix.length + 16 + rel.length)
  const buf = out.buf
  const p = putDec(buf, putBytes(buf, out.len, prefix), id)
  buf.set(rel, p)
  out.len = p + rel.length
}

const BLKREF_SEPARATED = ascii(', blkref #')
const BLK = ascii(' blk ')
const FPW = ascii(' FPW')
const FPW_VERIFY = ascii(' FPW for WAL verification')

function writeBlockRefsShort(out: OutputBuffer, rec: WalRecord): void {
  const blocks = rec.blocks
  for (let id = 0; id <= rec.maxBlockId; id++) {
    const b = blocks[id]!
    if (!b.inUse) continue
    writeRel(out, BLKREF_SEPARATED, id, b)
    if (b.forkNumber !== 0) out.ascii(' fork ').ascii(b.forkName)
    out.bytes(BLK).dec(b.blockNumber)
    if (b.hasImage) out.bytes(b.applyImage ? FPW : FPW_VERIFY)
  }
  out.char(0x0a)
}

function writeBlockRefsDetailed(out: OutputBuffer, rec: WalRecord): void {
  out.char(0x0a)
  const blocks = rec.blocks
  for (let id = 0; id <= rec.maxBlockId; id++) {
    const b = blocks[id]!
    if (!b.inUse) continue
    out.char(0x09)
    writeRel(out, BLKREF, id, b)
    out.ascii(' fork ').ascii(b.forkName).ascii(' blk ').dec(b.blockNumber)
    if (b.hasImage) {
      const method = fpiCompression(rec, b)
      out.ascii(b.applyImage ? ' (FPW)' : ' (FPW for WAL verification)')
      out.ascii('; hole: offset: ').dec(b.holeOffset).ascii(', length: ').dec(b.holeLength)
      if (method !== 'none') {
        out.ascii(', compression saved: ').dec(BLCKSZ - b.holeLength - b.imageLength)
        // 13 and 14 had one method (pglz) and did not name it.
        if (rec.version.fpi.lz4 !== 0) out.ascii(', method: ').ascii(method)
      }
    }
    out.char(0x0a)
  }
}

/** The record as a JSON-friendly object (for --json). */
export function recordToJson(rec: WalRecord): Record<string, unknown> {
  const blocks: Record<string, unknown>[] = []
  for (let id = 0; id <= rec.maxBlockId; id++) {
    const b = rec.blocks[id]!
    if (!b.inUse) continue
    const block: Record<string, unknown> = {
      id,
      relation: `${b.spcOid}/${b.dbOid}/${b.relNumber}`,
      fork: b.forkName,
      block: b.blockNumber,
      dataLength: b.dataLength,
    }
    if (b.willInit) block.willInit = true
    if (b.hasImage) {
      block.image = {
        length: b.imageLength,
        holeOffset: b.holeOffset,
        holeLength: b.holeLength,
        apply: b.applyImage,
        compression: fpiCompression(rec, b),
      }
    }
    blocks.push(block)
  }
  const rmgr = rmgrById(rec.rmid)
  const json: Record<string, unknown> = {
    // JSON uses PostgreSQL's pg_lsn text (no zero padding), as every repl command's JSON does.
    lsn: lsnText(rec.lsn),
    prev: lsnText(rec.prevLsn),
    next: lsnText(rec.endLsn),
    rmgr: rmgr.name,
    type: recordTypeName(rec),
    info: rec.info,
    xid: rec.xid,
    recordLength: rec.recordLength,
    totalLength: rec.totalLength,
    fpiLength: rec.fpiLength,
    description: describeRecord(rec),
    blocks,
  }
  if (rec.toplevelXid) json.toplevelXid = rec.toplevelXid
  if (rec.origin) json.origin = rec.origin
  return json
}
