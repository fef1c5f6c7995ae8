import {OutputBuffer, putAsciiPad, putBytes, putDec, putDecPad, putLsn08} from './output-buffer.js'
import {BLCKSZ, fpiCompression, lsnText08, type BlockRef, type WalRecord} from './record.js'
import {describeRecord, recordTypeName, rmgrById} from './rmgr/index.js'

/**
 * pg_waldump's per-record text:
 *
 *   rmgr: Heap        len (rec/tot):     59/    59, tx:        735, lsn: 0/01A2B3C8, prev 0/01A2B390, desc: INSERT off 5 flags 0x00, blkref #0: rel 1663/5/16384 blk 0
 *
 * Strings are only built here, when a record is printed.
 */

const ascii = (s: string): Buffer => Buffer.from(s, 'latin1')
const RMGR_PREFIX = ascii('rmgr: ')
const LEN_PREFIX = ascii(' len (rec/tot): ')
const TX_PREFIX = ascii(', tx: ')
const LSN_PREFIX = ascii(', lsn: ')
const PREV_PREFIX = ascii(', prev ')
const DESC_PREFIX = ascii(', desc: ')

/** One record as pg_waldump prints it, including the trailing newline. */
export function writeRecord(out: OutputBuffer, rec: WalRecord, bkpDetails: boolean): void {
  const rmgr = rmgrById(rec.rmid)
  const type = rmgr.identify(rec.info, rec.version) ?? `UNKNOWN (${(rec.info & 0xf0).toString(16)})`
  // The fixed part of the line, formatted with local position arithmetic (the hot path).
  out.ensure(160 + type.length)
  const buf = out.buf
  let p = out.len
  p = putBytes(buf, p, RMGR_PREFIX)
  p = putAsciiPad(buf, p, rmgr.name, 11)
  p = putBytes(buf, p, LEN_PREFIX)
  p = putDecPad(buf, p, rec.recordLength, 6)
  buf[p++] = 0x2f
  p = putDecPad(buf, p, rec.totalLength, 6)
  p = putBytes(buf, p, TX_PREFIX)
  p = putDecPad(buf, p, rec.xid, 10)
  p = putBytes(buf, p, LSN_PREFIX)
  p = putLsn08(buf, p, rec.lsn)
  p = putBytes(buf, p, PREV_PREFIX)
  p = putLsn08(buf, p, rec.prevLsn)
  p = putBytes(buf, p, DESC_PREFIX)
  p = putAsciiPad(buf, p, type, 0)
  buf[p++] = 0x20
  out.len = p
  rmgr.write(rec, out)
  if (bkpDetails) writeBlockRefsDetailed(out, rec)
  else writeBlockRefsShort(out, rec)
}

/** The same as a string (tests, single records). */
export function formatRecord(rec: WalRecord, bkpDetails: boolean): string {
  const chunks: Buffer[] = []
  const out = new OutputBuffer({write: (c: Buffer) => chunks.push(c) > 0} as unknown as NodeJS.WritableStream, 4096)
  writeRecord(out, rec, bkpDetails)
  out.flush()
  return Buffer.concat(chunks).toString('utf8')
}

const BLKREF = ascii('blkref #')
const REL = ascii(': rel ')

function writeRel(out: OutputBuffer, id: number, b: BlockRef): void {
  out.ensure(64)
  const buf = out.buf
  let p = putBytes(buf, out.len, BLKREF)
  p = putDec(buf, p, id)
  p = putBytes(buf, p, REL)
  p = putDec(buf, p, b.spcOid)
  buf[p++] = 0x2f
  p = putDec(buf, p, b.dbOid)
  buf[p++] = 0x2f
  out.len = putDec(buf, p, b.relNumber)
}

function writeBlockRefsShort(out: OutputBuffer, rec: WalRecord): void {
  const blocks = rec.blocks
  for (let id = 0; id <= rec.maxBlockId; id++) {
    const b = blocks[id]!
    if (!b.inUse) continue
    out.ascii(', ')
    writeRel(out, id, b)
    if (b.forkNumber !== 0) out.ascii(' fork ').ascii(b.forkName)
    out.ascii(' blk ').dec(b.blockNumber)
    if (b.hasImage) out.ascii(b.applyImage ? ' FPW' : ' FPW for WAL verification')
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
    writeRel(out, id, b)
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
    lsn: lsnText08(rec.lsn),
    prev: lsnText08(rec.prevLsn),
    next: lsnText08(rec.endLsn),
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
