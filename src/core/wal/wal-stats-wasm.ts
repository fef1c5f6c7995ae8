import type {WalVersion} from './page.js'
import {RM_MAX_BUILTIN_ID, RM_XACT_ID} from './rmgr/index.js'
import {
  ADD, AND, BLOCK, br, brIf, call, ELSE, END, EQ, EQZ, f64, F64_FROM_U32, F64ADD, f64load, f64store, get, GEU, GTS, GTU, i32, I32, IF,
  LEU, load, load8, load16, LOOP, LTS, LTU, NE, OR, RETURN, set, SHL, SHRU, store, SUB,
  type WasmFunction,
} from './wasm-asm.js'
import {XLOG_SWITCH} from './rmgr/xlog.js'

/**
 * pg_waldump --stats in WebAssembly: a walk over the records of one WAL page that checks each
 * as the reader's fast path does (length, prev-link, rmgr, CRC, block headers) and counts it
 * per record type, with no call back into JS per record. Records it does not accept (page
 * boundaries, WAL switches, custom rmgrs, anything invalid) are left to the general path,
 * which reports errors. Counting in bulk is what makes `--stats` fast: it does per record
 * what pg_waldump's XLogRecStoreStats does, and no more.
 */

/** Record types counted here: built-in rmgrs, 16 info values each. */
export const WASM_STATS_TYPES = (RM_MAX_BUILTIN_ID + 1) * 16
const TYPE_BYTES = WASM_STATS_TYPES * 8
/** Counts, record bytes and FPI bytes per type (f64), then two result words. */
export const STATS_AREA_BYTES = 3 * TYPE_BYTES + 8
/** Offset in the area of the walk's two results: the last record counted, then how many. */
export const STATS_RESULTS_OFFSET = 3 * TYPE_BYTES

/** What the walker needs to know of a WAL format. */
export interface WalkFormat {
  compressedBits: number
  holeBit: number
  toplevelXidOk: boolean
  xactMask: number
}

export function walkFormat(v: WalVersion): WalkFormat {
  return {compressedBits: v.fpi.compressed, holeBit: v.fpi.hasHole, toplevelXidOk: v.toplevelXidBlock, xactMask: v.statsXactByOpcode ? 0x07 : 0x0f}
}

const BLCKSZ = 8192
const fail = (...cond: number[][]): number[] => [...cond.flat(), ...IF, ...i32(-1), ...RETURN, ...END]

/**
 * The walker's two functions, for a module whose function `check` checks one record's CRC.
 * They become functions `firstIndex` (fpi) and `firstIndex + 1` (walk).
 */
export function statsWalkerFunctions(o: {check: number; statsBase: number; firstIndex: number}): WasmFunction[] {
  const FPI_FN = o.firstIndex
  // fpi(p, end, compressedBits, holeBit, toplevelXidOk) -> image bytes of the record at p
  // (ending at end), or -1 where decodeRecordBody would report an error.
  const [p, end, compBits, holeBit, topXidOk] = [0, 1, 2, 3, 4]
  const [datatotal, maxBlock, haveRel, fpiLen, blockId, forkFlags, dataLen, imgLen, holeOff, imgInfo, compressed, hasHole, holeLen] = [5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17]
  const advance = (n: number): number[] => [...get(p), ...i32(n), ...ADD, ...set(p)]
  const room = (n: number): number[] => fail([...get(end), ...get(p), ...SUB, ...i32(n), ...LTU])
  const fpi: WasmFunction = {
    name: 'fpi',
    params: [I32, I32, I32, I32, I32],
    results: [I32],
    locals: Array.from({length: 13}, () => I32),
    body: [
      ...advance(24),
      ...i32(-1), ...set(maxBlock),
      ...BLOCK, ...LOOP,
      // while (end - p > datatotal)
      ...get(end), ...get(p), ...SUB, ...get(datatotal), ...LEU, ...brIf(1),
      ...get(p), ...load8(0), ...set(blockId),
      ...advance(1),
      // XLR_BLOCK_ID_DATA_SHORT: the main data's length, always last
      ...get(blockId), ...i32(255), ...EQ, ...IF,
      ...fail([...get(p), ...get(end), ...GEU]),
      ...get(datatotal), ...get(p), ...load8(0), ...ADD, ...set(datatotal),
      ...advance(1),
      ...br(2),
      ...END,
      // XLR_BLOCK_ID_DATA_LONG (a length beyond the record fails here, so sums never wrap)
      ...get(blockId), ...i32(254), ...EQ, ...IF,
      ...room(4),
      ...fail([...get(p), ...load(0, 0), ...get(end), ...get(p), ...SUB, ...GTU]),
      ...get(datatotal), ...get(p), ...load(0, 0), ...ADD, ...set(datatotal),
      ...advance(4),
      ...br(2),
      ...END,
      // XLR_BLOCK_ID_ORIGIN, XLR_BLOCK_ID_TOPLEVEL_XID (14+), or a block reference
      ...get(blockId), ...i32(253), ...EQ, ...IF,
      ...advance(2),
      ...ELSE,
      ...get(blockId), ...i32(252), ...EQ, ...get(topXidOk), ...AND, ...IF,
      ...advance(4),
      ...ELSE,
      ...fail([...get(blockId), ...i32(32), ...LEU, ...get(blockId), ...get(maxBlock), ...GTS, ...AND, ...EQZ]),
      ...get(blockId), ...set(maxBlock),
      ...room(3),
      ...get(p), ...load8(0), ...set(forkFlags),
      ...get(p), ...load16(1), ...set(dataLen),
      ...advance(3),
      // BKPBLOCK_HAS_DATA set exactly when there is data
      ...fail([...get(forkFlags), ...i32(0x20), ...AND, ...i32(0), ...NE, ...get(dataLen), ...i32(0), ...NE, ...NE]),
      ...get(datatotal), ...get(dataLen), ...ADD, ...set(datatotal),
      // BKPBLOCK_HAS_IMAGE
      ...get(forkFlags), ...i32(0x10), ...AND, ...IF,
      ...room(5),
      ...get(p), ...load16(0), ...set(imgLen),
      ...get(p), ...load16(2), ...set(holeOff),
      ...get(p), ...load8(4), ...set(imgInfo),
      ...advance(5),
      ...get(imgInfo), ...get(compBits), ...AND, ...i32(0), ...NE, ...set(compressed),
      ...get(imgInfo), ...get(holeBit), ...AND, ...i32(0), ...NE, ...set(hasHole),
      ...i32(0), ...set(holeLen),
      ...get(compressed), ...EQZ, ...IF,
      ...i32(BLCKSZ), ...get(imgLen), ...SUB, ...set(holeLen),
      ...ELSE,
      ...get(hasHole), ...IF,
      ...room(2),
      ...get(p), ...load16(0), ...set(holeLen),
      ...advance(2),
      ...END,
      ...END,
      ...get(hasHole), ...IF,
      ...fail([...get(holeOff), ...EQZ, ...get(holeLen), ...EQZ, ...OR, ...get(imgLen), ...i32(BLCKSZ), ...EQ, ...OR]),
      ...ELSE,
      ...fail([...get(holeOff), ...get(holeLen), ...OR]),
      ...END,
      ...get(compressed), ...IF,
      ...fail([...get(imgLen), ...i32(BLCKSZ), ...EQ]),
      ...ELSE,
      ...fail([...get(hasHole), ...EQZ, ...get(imgLen), ...i32(BLCKSZ), ...NE, ...AND]),
      ...END,
      ...get(datatotal), ...get(imgLen), ...ADD, ...set(datatotal),
      ...get(fpiLen), ...get(imgLen), ...ADD, ...set(fpiLen),
      ...END,
      // BKPBLOCK_SAME_REL, else a RelFileLocator; then the block number
      ...get(forkFlags), ...i32(0x80), ...AND, ...EQZ, ...IF,
      ...advance(12),
      ...i32(1), ...set(haveRel),
      ...ELSE,
      ...fail([...get(haveRel), ...EQZ]),
      ...END,
      ...advance(4),
      ...END,
      ...END,
      ...fail([...get(p), ...get(end), ...GTU]),
      ...br(0),
      ...END, ...END,
      ...fail([...get(end), ...get(p), ...SUB, ...get(datatotal), ...NE]),
      ...get(fpiLen),
    ],
  }

  // walk(p, end, lsnDelta, prevLo, prevHi, hi, compressedBits, holeBit, toplevelXidOk,
  // xactMask) -> where it stopped. Counts records from p while each lies wholly before end,
  // links to the previous one (prevLo/prevHi: the LSN halves; record LSN = address +
  // lsnDelta, high half hi) and passes its checks. Stores the last record counted and the
  // count in the result words.
  const W = {p: 0, end: 1, lsnDelta: 2, prevLo: 3, prevHi: 4, hi: 5, compBits: 6, holeBit: 7, topXidOk: 8, xactMask: 9}
  const [total, info, rmid, recFpi, idx, last, n] = [10, 11, 12, 13, 14, 15, 16]
  const S = o.statsBase
  const addAt = (offset: number, value: number[]): number[] => [...get(idx), ...get(idx), ...f64load(offset), ...value, ...F64ADD, ...f64store(offset)]
  const walk: WasmFunction = {
    name: 'walk',
    params: Array.from({length: 10}, () => I32),
    results: [I32],
    locals: Array.from({length: 7}, () => I32),
    body: [
      ...i32(-1), ...set(last),
      ...BLOCK, ...LOOP,
      // signed: alignment can step past `end`
      ...get(W.end), ...get(W.p), ...SUB, ...i32(24), ...LTS, ...brIf(1),
      ...get(W.p), ...load(0), ...set(total),
      ...get(total), ...i32(24), ...LTU, ...brIf(1),
      ...get(total), ...get(W.end), ...get(W.p), ...SUB, ...GTU, ...brIf(1),
      ...get(W.p), ...load(8), ...get(W.prevLo), ...NE, ...brIf(1),
      ...get(W.p), ...load(12), ...get(W.prevHi), ...NE, ...brIf(1),
      ...get(W.p), ...load8(16), ...set(info),
      ...get(W.p), ...load8(17), ...set(rmid),
      ...get(rmid), ...i32(RM_MAX_BUILTIN_ID), ...GTU, ...brIf(1),
      ...get(rmid), ...EQZ, ...get(info), ...i32(0xf0), ...AND, ...i32(XLOG_SWITCH), ...EQ, ...AND, ...brIf(1),
      ...get(W.p), ...get(total), ...call(o.check), ...EQZ, ...brIf(1),
      ...get(W.p), ...get(W.p), ...get(total), ...ADD, ...get(W.compBits), ...get(W.holeBit), ...get(W.topXidOk), ...call(FPI_FN), ...set(recFpi),
      ...get(recFpi), ...i32(0), ...LTS, ...brIf(1),
      // the type: rmgr and the info's top four bits (Transaction: its opcode bits, 14+)
      ...get(info), ...i32(4), ...SHRU, ...set(idx),
      ...get(rmid), ...i32(RM_XACT_ID), ...EQ, ...IF, ...get(idx), ...get(W.xactMask), ...AND, ...set(idx), ...END,
      ...get(rmid), ...i32(4), ...SHL, ...get(idx), ...OR, ...i32(3), ...SHL, ...set(idx),
      ...addAt(S, f64(1)),
      ...addAt(S + TYPE_BYTES, [...get(total), ...get(recFpi), ...SUB, ...F64_FROM_U32]),
      ...addAt(S + 2 * TYPE_BYTES, [...get(recFpi), ...F64_FROM_U32]),
      ...get(W.p), ...set(last),
      ...get(n), ...i32(1), ...ADD, ...set(n),
      ...get(W.p), ...get(W.lsnDelta), ...ADD, ...set(W.prevLo),
      ...get(W.hi), ...set(W.prevHi),
      ...get(W.p), ...get(total), ...i32(7), ...ADD, ...i32(-8), ...AND, ...ADD, ...set(W.p),
      ...br(0),
      ...END, ...END,
      ...i32(0), ...get(last), ...store(S + STATS_RESULTS_OFFSET),
      ...i32(0), ...get(n), ...store(S + STATS_RESULTS_OFFSET + 4),
      ...get(W.p),
    ],
  }
  return [fpi, walk]
}
