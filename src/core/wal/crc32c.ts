import {createRequire} from 'node:module'

import {STATS_AREA_BYTES, STATS_RESULTS_OFFSET, statsWalkerFunctions, WASM_STATS_TYPES, type WalkFormat} from './wal-stats-wasm.js'
import {ADD, AND, BLOCK, br, brIf, call, END, EQ, EQZ, get, GEU, GTU, i32, I32, IF, load, load8, LOOP, LTS, LTU, moduleBytes, set, SHL, SHRU, SUB, XOR, type WasmFunction} from './wasm-asm.js'

/**
 * CRC-32C (Castagnoli), as PostgreSQL uses for WAL records and backup manifests.
 *
 * Two engines: `@node-rs/crc32` (hardware CRC, ~4 GB/s) and a slicing-by-16 table in JS
 * (~1.5 GB/s). A native call costs ~150-200 ns whatever the length, so most WAL records
 * (tens to hundreds of bytes) are faster through the table; long ones (full-page images) go
 * native. The table is also the fallback when the native module cannot load.
 */

type NativeCrc = (input: Uint8Array, initialState?: number) => number

const native: NativeCrc | undefined = (() => {
  if (process.env.REPL_CRC32C === 'js') return undefined
  try {
    const require = createRequire(import.meta.url)
    return (require('@node-rs/crc32') as {crc32c: NativeCrc}).crc32c
  } catch {
    return undefined
  }
})()

/** Below this many bytes the table beats the native call overhead (measured on x86-64). */
const NATIVE_MIN_LENGTH = 768

const POLY_REFLECTED = 0x82f63b78
/** 16 tables of 256 entries: TABLE[k*256 + b] is the CRC of byte b followed by k zero bytes. */
const TABLE = new Int32Array(16 * 256)
for (let n = 0; n < 256; n++) {
  let c = n
  for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY_REFLECTED : c >>> 1
  TABLE[n] = c
}
for (let n = 0; n < 256; n++) {
  let c = TABLE[n]!
  for (let t = 1; t < 16; t++) {
    c = TABLE[c & 0xff]! ^ (c >>> 8)
    TABLE[t * 256 + n] = c
  }
}

// One-entry cache of a 32-bit view over the last buffer seen: WAL is checked record by record
// out of the same large chunk, and reading words instead of bytes doubles the table speed.
let cachedBuffer: ArrayBufferLike | undefined
let cachedWords: Int32Array = new Int32Array(0)

function wordsOf(data: Uint8Array): Int32Array | undefined {
  if ((data.byteOffset & 3) !== 0) return undefined
  if (data.buffer !== cachedBuffer) {
    cachedBuffer = data.buffer
    cachedWords = new Int32Array(data.buffer, 0, data.buffer.byteLength >>> 2)
  }
  return cachedWords
}

/**
 * Continue a CRC over `data[start, end)`. `state` is the raw register (start with
 * CRC32C_INIT); finish with `crc32cFinish`. Splitting the work this way lets callers feed
 * discontiguous pieces (a record's payload, then its header) without copying.
 */
export function crc32cUpdate(state: number, data: Uint8Array, start: number, end: number): number {
  if (end - start >= NATIVE_MIN_LENGTH && native) {
    return ~native(data.subarray(start, end), ~state >>> 0)
  }
  return tableUpdate(state, data, start, end)
}

export const CRC32C_INIT = -1

export function crc32cFinish(state: number): number {
  return ~state >>> 0
}

/** CRC-32C of `data[start, end)`, as an unsigned 32-bit number. */
export function crc32c(data: Uint8Array, start = 0, end = data.length): number {
  return crc32cFinish(crc32cUpdate(CRC32C_INIT, data, start, end))
}

/** The pure-JS engine, exported for tests that compare it with the native one. */
export function tableUpdate(state: number, data: Uint8Array, start: number, end: number): number {
  const T = TABLE
  let crc = state
  let s = start
  const words = end - start >= 32 ? wordsOf(data) : undefined
  if (words) {
    // Bytes up to a 4-byte boundary of the underlying buffer, then 16 bytes per step.
    const base = data.byteOffset
    while (((base + s) & 3) !== 0) crc = T[(crc ^ data[s++]!) & 0xff]! ^ (crc >>> 8)
    let w = (base + s) >>> 2
    const wend = w + (((end - s) >>> 4) << 2)
    while (w < wend) {
      const a = crc ^ words[w]!
      const b = words[w + 1]!
      const c = words[w + 2]!
      const d = words[w + 3]!
      crc =
        T[3840 + (a & 0xff)]! ^ T[3584 + ((a >>> 8) & 0xff)]! ^ T[3328 + ((a >>> 16) & 0xff)]! ^ T[3072 + (a >>> 24)]! ^
        T[2816 + (b & 0xff)]! ^ T[2560 + ((b >>> 8) & 0xff)]! ^ T[2304 + ((b >>> 16) & 0xff)]! ^ T[2048 + (b >>> 24)]! ^
        T[1792 + (c & 0xff)]! ^ T[1536 + ((c >>> 8) & 0xff)]! ^ T[1280 + ((c >>> 16) & 0xff)]! ^ T[1024 + (c >>> 24)]! ^
        T[768 + (d & 0xff)]! ^ T[512 + ((d >>> 8) & 0xff)]! ^ T[256 + ((d >>> 16) & 0xff)]! ^ T[d >>> 24]!
      w += 4
    }
    s = (w << 2) - base
  }
  while (s < end) crc = T[(crc ^ data[s++]!) & 0xff]! ^ (crc >>> 8)
  return crc
}

export const crc32cEngine = native ? 'native+table' : 'table'

// ---- WebAssembly engine ----
//
// The same slicing-by-16 loop compiled to WebAssembly runs ~1.7x faster than in JS (no bounds
// checks, no tagging), but only on bytes inside its linear memory. A CrcArena is such a
// memory: the reader allocates its read buffers from one, so records are checked where they
// were read. Each thread makes its own arena; the memory is not shared, because typed arrays
// over shared (growable) memory are slower to index in V8, and indexing is the reader's work.
// The same module holds the statistics walker (wal-stats-wasm.ts), which checks records with
// these functions and counts them in the arena.
//
// The module is assembled here from short instruction lists (wasm-asm.ts) rather than
// shipped as a binary.

const TABLE_BASE = 0
/** Where the statistics walker counts (see wal-stats-wasm.ts), then the arena's buffers. */
const STATS_BASE = TABLE_BASE + TABLE.byteLength
const ARENA_START = STATS_BASE + STATS_AREA_BYTES

// The module's functions, in order: crc, check and run, then the statistics walker's.
const CRC_FN = 0
const CHECK_FN = 1

function wasmModuleBytes(pages: number): Uint8Array {
  // T[k][byte n of word v]: the table index (byte << 2) is isolated with shifts and a mask.
  const lookup = (v: number, byte: number, k: number): number[] => [
    ...get(v),
    ...(byte === 0 ? [...i32(2), ...SHL] : [...i32(8 * byte - 2), ...SHRU]),
    ...i32(1020),
    ...AND,
    ...load(TABLE_BASE + k * 1024),
  ]
  const word = (v: number, k: number): number[] => [...lookup(v, 0, k + 3), ...lookup(v, 1, k + 2), ...XOR, ...lookup(v, 2, k + 1), ...XOR, ...lookup(v, 3, k), ...XOR]
  // crc(ptr, end, state) -> state; locals 3..6 hold four 32-bit words.
  const crc: WasmFunction = {
    name: 'crc',
    params: [I32, I32, I32],
    results: [I32],
    locals: [I32, I32, I32, I32],
    body: [
      // while (end - ptr >= 16): fold 16 bytes
      ...BLOCK, ...LOOP,
      ...get(1), ...get(0), ...SUB, ...i32(16), ...LTU, ...brIf(1),
      ...get(0), ...load(0), ...get(2), ...XOR, ...set(3),
      ...get(0), ...load(4), ...set(4),
      ...get(0), ...load(8), ...set(5),
      ...get(0), ...load(12), ...set(6),
      ...word(3, 12), ...word(4, 8), ...XOR, ...word(5, 4), ...XOR, ...word(6, 0), ...XOR, ...set(2),
      ...get(0), ...i32(16), ...ADD, ...set(0),
      ...br(0), ...END, ...END,
      // then at most one 8-byte and one 4-byte step: most WAL records are short, and their
      // tails would otherwise go a byte at a time
      ...get(1), ...get(0), ...SUB, ...i32(8), ...GEU, ...IF,
      ...get(0), ...load(0), ...get(2), ...XOR, ...set(3),
      ...get(0), ...load(4), ...set(4),
      ...word(3, 4), ...word(4, 0), ...XOR, ...set(2),
      ...get(0), ...i32(8), ...ADD, ...set(0),
      ...END,
      ...get(1), ...get(0), ...SUB, ...i32(4), ...GEU, ...IF,
      ...get(0), ...load(0), ...get(2), ...XOR, ...set(3),
      ...word(3, 0), ...set(2),
      ...get(0), ...i32(4), ...ADD, ...set(0),
      ...END,
      // then byte by byte
      ...BLOCK, ...LOOP,
      ...get(0), ...get(1), ...GEU, ...brIf(1),
      ...get(2), ...get(0), ...load8(0), ...XOR, ...i32(255), ...AND, ...i32(2), ...SHL, ...load(TABLE_BASE),
      ...get(2), ...i32(8), ...SHRU, ...XOR, ...set(2),
      ...get(0), ...i32(1), ...ADD, ...set(0),
      ...br(0), ...END, ...END,
      ...get(2),
    ],
  }
  // check(rec, total) -> 1 when the WAL record at `rec` carries the right CRC: the payload
  // [rec+24, rec+total), then the header up to xl_crc [rec, rec+20), against xl_crc at rec+20.
  const check: WasmFunction = {
    name: 'check',
    params: [I32, I32],
    results: [I32],
    locals: [],
    body: [
      ...get(0), ...i32(24), ...ADD, ...get(0), ...get(1), ...ADD, ...i32(-1), ...call(CRC_FN),
      ...set(1),
      ...get(0), ...get(0), ...i32(20), ...ADD, ...get(1), ...call(CRC_FN),
      ...i32(-1), ...XOR, ...get(0), ...load(20), ...EQ,
    ],
  }
  // run(rec, end) -> address: checks consecutive records (8-byte aligned, as on a WAL page)
  // from `rec` while each lies wholly before `end` and carries the right CRC; returns where
  // that stopped (the first record not checked or failing). Local 2 holds xl_tot_len.
  const run: WasmFunction = {
    name: 'run',
    params: [I32, I32],
    results: [I32],
    locals: [I32],
    body: [
      ...BLOCK, ...LOOP,
      // signed: alignment can step past `end`, leaving a negative distance
      ...get(1), ...get(0), ...SUB, ...i32(24), ...LTS, ...brIf(1),
      ...get(0), ...load(0), ...set(2),
      ...get(2), ...i32(24), ...LTU, ...brIf(1),
      ...get(2), ...get(1), ...get(0), ...SUB, ...GTU, ...brIf(1),
      ...get(0), ...get(2), ...call(CHECK_FN), ...EQZ, ...brIf(1),
      ...get(0), ...get(2), ...i32(7), ...ADD, ...i32(-8), ...AND, ...ADD, ...set(0),
      ...br(0), ...END, ...END,
      ...get(0),
    ],
  }
  const own = [crc, check, run]
  return moduleBytes(pages, [...own, ...statsWalkerFunctions({check: CHECK_FN, statsBase: STATS_BASE, firstIndex: own.length})])
}

type WasmCrc = (ptr: number, end: number, state: number) => number
type WasmCheck = (rec: number, total: number) => number
type WasmRun = (rec: number, end: number) => number
type WasmWalk = (p: number, end: number, lsnDelta: number, prevLo: number, prevHi: number, hi: number, compressedBits: number, holeBit: number, toplevelXidOk: number, xactMask: number) => number

// The compiler's lib setting (ES2023, no DOM) has no WebAssembly types; declare what we use.
declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace WebAssembly {
    class Memory {
      constructor(descriptor: {initial: number; maximum?: number; shared?: boolean})
      readonly buffer: ArrayBuffer | SharedArrayBuffer
    }
    class Module {
      constructor(bytes: Uint8Array)
    }
    class Instance {
      constructor(module: Module, imports: Record<string, Record<string, unknown>>)
      readonly exports: Record<string, unknown>
    }
  }
}

/** A fixed-size memory whose buffers can be checked (and, for statistics, counted) with the WebAssembly engine. */
export class CrcArena {
  readonly memory: WebAssembly.Memory
  readonly pages: number
  private next = ARENA_START
  private readonly fn: WasmCrc
  private readonly checkFn: WasmCheck
  private readonly runFn: WasmRun
  private readonly walkFn: WasmWalk
  private readonly results: Int32Array
  /** The walker's counts: per record type, count, record bytes and FPI bytes (f64). */
  readonly walkCounts: Float64Array

  private constructor(memory: WebAssembly.Memory, pages: number, exports: WasmExports) {
    this.memory = memory
    this.pages = pages
    this.fn = exports.crc
    this.checkFn = exports.check
    this.runFn = exports.run
    this.walkFn = exports.walk
    this.results = new Int32Array(memory.buffer, STATS_BASE + STATS_RESULTS_OFFSET, 2)
    this.walkCounts = new Float64Array(memory.buffer, STATS_BASE, 3 * WASM_STATS_TYPES)
  }

  /** An arena with room for `bytes` of buffers, or undefined where WebAssembly is unavailable. */
  static create(bytes: number): CrcArena | undefined {
    if (process.env.REPL_CRC32C === 'js') return undefined
    try {
      const pages = Math.ceil((ARENA_START + bytes + 4096) / 65536)
      const memory = new WebAssembly.Memory({initial: pages, maximum: pages})
      new Int32Array(memory.buffer, TABLE_BASE, TABLE.length).set(TABLE)
      return new CrcArena(memory, pages, instantiate(memory, pages))
    } catch {
      return undefined
    }
  }

  /** A buffer inside the arena; throws when the arena is full. */
  alloc(size: number): Uint8Array {
    const start = (this.next + 7) & ~7
    if (start + size > this.memory.buffer.byteLength) throw new Error('CrcArena is full')
    this.next = start + size
    return new Uint8Array(this.memory.buffer, start, size)
  }

  private wordView: Int32Array | undefined

  /** The whole memory as 32-bit words (the arena never grows, so the view stays valid). */
  words(): Int32Array {
    return (this.wordView ??= new Int32Array(this.memory.buffer))
  }

  owns(data: Uint8Array): boolean {
    return data.buffer === this.memory.buffer
  }

  /** crc32cUpdate for a buffer the arena owns. */
  update(state: number, data: Uint8Array, start: number, end: number): number {
    const base = data.byteOffset
    return this.fn(base + start, base + end, state)
  }

  /**
   * Does the WAL record at `data[off]` (`total` bytes) carry the right CRC? The whole check
   * in one call into WebAssembly: record checks are the reader's hottest path.
   */
  checkRecord(data: Uint8Array, off: number, total: number): boolean {
    return this.checkFn(data.byteOffset + off, total) === 1
  }

  /**
   * Check the run of records starting at `address` (each 8-byte aligned after the previous,
   * as on a WAL page) while they end before `end`; returns the address where the run stops:
   * the first record that is cut off, too short, or fails its CRC. One call per page instead
   * of one per record.
   */
  checkRun(address: number, end: number): number {
    return this.runFn(address, end)
  }

  /**
   * Count into `walkCounts` the run of records from `address` that lie wholly before `end`,
   * link each to the one before (the first to `prevLsn`) and pass every check; record LSNs
   * are addresses + `lsnDelta`. Returns where it stopped; walkedCount and walkedLast say what it counted.
   */
  walkRun(address: number, end: number, lsnDelta: number, prevLsn: number, format: WalkFormat): number {
    const hi = Math.floor((address + lsnDelta) / 4294967296)
    return this.walkFn(address, end, lsnDelta | 0, prevLsn | 0, Math.floor(prevLsn / 4294967296) | 0, hi | 0, format.compressedBits, format.holeBit, format.toplevelXidOk ? 1 : 0, format.xactMask)
  }

  /** How many records the last walkRun counted. */
  get walkedCount(): number {
    return this.results[1]!
  }

  /** The address of the last record the last walkRun counted (when it counted any). */
  get walkedLast(): number {
    return this.results[0]!
  }
}

// Compiled once per memory size (the size is part of the module's memory import).
const modules = new Map<number, WebAssembly.Module>()

interface WasmExports {
  crc: WasmCrc
  check: WasmCheck
  run: WasmRun
  walk: WasmWalk
}

function instantiate(memory: WebAssembly.Memory, pages: number): WasmExports {
  let module = modules.get(pages)
  if (!module) {
    module = new WebAssembly.Module(wasmModuleBytes(pages))
    modules.set(pages, module)
  }
  const instance = new WebAssembly.Instance(module, {env: {memory}})
  const e = instance.exports
  return {crc: e.crc as WasmCrc, check: e.check as WasmCheck, run: e.run as WasmRun, walk: e.walk as WasmWalk}
}
