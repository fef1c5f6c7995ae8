import {createRequire} from 'node:module'

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
//
// The module is assembled here from a short instruction list rather than shipped as a binary.

const TABLE_BASE = 0
const ARENA_START = TABLE_BASE + TABLE.byteLength

function uleb(n: number): number[] {
  const out: number[] = []
  do {
    let b = n & 0x7f
    n >>>= 7
    if (n !== 0) b |= 0x80
    out.push(b)
  } while (n !== 0)
  return out
}

function sleb(n: number): number[] {
  const out: number[] = []
  for (;;) {
    const b = n & 0x7f
    n >>= 7
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) {
      out.push(b)
      return out
    }
    out.push(b | 0x80)
  }
}

function wasmModuleBytes(pages: number): Uint8Array {
  const str = (t: string): number[] => [...uleb(t.length), ...Buffer.from(t)]
  const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()]
  const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body]
  // Opcodes used by crc(ptr, end, state) -> state; locals 3..6 hold four 32-bit words.
  const get = (i: number): number[] => [0x20, i]
  const set = (i: number): number[] => [0x21, i]
  const i32 = (n: number): number[] => [0x41, ...sleb(n)]
  const load = (offset: number): number[] => [0x28, 2, ...uleb(offset)]
  const load8 = (offset: number): number[] => [0x2d, 0, ...uleb(offset)]
  const [AND, XOR, SHL, SHRU, ADD, SUB, GEU, LTU] = [[0x71], [0x73], [0x74], [0x76], [0x6a], [0x6b], [0x4f], [0x49]]
  const BLOCK = [0x02, 0x40]
  const LOOP = [0x03, 0x40]
  const END = [0x0b]
  const brIf = (depth: number): number[] => [0x0d, depth]
  const br = (depth: number): number[] => [0x0c, depth]
  // T[k][byte n of word v]: the table index (byte << 2) is isolated with shifts and a mask.
  const lookup = (v: number, byte: number, k: number): number[] => [
    ...get(v),
    ...(byte === 0 ? [...i32(2), ...SHL] : [...i32(8 * byte - 2), ...SHRU]),
    ...i32(1020),
    ...AND,
    ...load(TABLE_BASE + k * 1024),
  ]
  const word = (v: number, k: number): number[] => [...lookup(v, 0, k + 3), ...lookup(v, 1, k + 2), ...XOR, ...lookup(v, 2, k + 1), ...XOR, ...lookup(v, 3, k), ...XOR]
  const body = [
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
    // then byte by byte
    ...BLOCK, ...LOOP,
    ...get(0), ...get(1), ...GEU, ...brIf(1),
    ...get(2), ...get(0), ...load8(0), ...XOR, ...i32(255), ...AND, ...i32(2), ...SHL, ...load(TABLE_BASE),
    ...get(2), ...i32(8), ...SHRU, ...XOR, ...set(2),
    ...get(0), ...i32(1), ...ADD, ...set(0),
    ...br(0), ...END, ...END,
    ...get(2), ...END,
  ]
  const func = [...uleb(1), ...uleb(4), 0x7f, ...body]
  // check(rec, total) -> 1 when the WAL record at `rec` carries the right CRC: the payload
  // [rec+24, rec+total), then the header up to xl_crc [rec, rec+20), against xl_crc at rec+20.
  const CALL = (f: number): number[] => [0x10, f]
  const EQ = [0x46]
  const check = [
    ...uleb(0),
    ...get(0), ...i32(24), ...ADD, ...get(0), ...get(1), ...ADD, ...i32(-1), ...CALL(0),
    ...set(1),
    ...get(0), ...get(0), ...i32(20), ...ADD, ...get(1), ...CALL(0),
    ...i32(-1), ...XOR, ...get(0), ...load(20), ...EQ,
    ...END,
  ]
  // run(rec, end) -> address: checks consecutive records (8-byte aligned, as on a WAL page)
  // from `rec` while each lies wholly before `end` and carries the right CRC; returns where
  // that stopped (the first record not checked or failing). Local 2 holds xl_tot_len.
  const [EQZ, GTU, LTS] = [[0x45], [0x4b], [0x48]]
  const run = [
    ...uleb(1), ...uleb(1), 0x7f,
    ...BLOCK, ...LOOP,
    // signed: alignment can step past `end`, leaving a negative distance
    ...get(1), ...get(0), ...SUB, ...i32(24), ...LTS, ...brIf(1),
    ...get(0), ...load(0), ...set(2),
    ...get(2), ...i32(24), ...LTU, ...brIf(1),
    ...get(2), ...get(1), ...get(0), ...SUB, ...GTU, ...brIf(1),
    ...get(0), ...get(2), ...CALL(1), ...EQZ, ...brIf(1),
    ...get(0), ...get(2), ...i32(7), ...ADD, ...i32(-8), ...AND, ...ADD, ...set(0),
    ...br(0), ...END, ...END,
    ...get(0), ...END,
  ]
  const I32 = 0x7f
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec([[0x60, ...vec([[I32], [I32], [I32]]), ...vec([[I32]])], [0x60, ...vec([[I32], [I32]]), ...vec([[I32]])]])),
    // imported memory: flags 0x01 = has maximum
    ...section(2, vec([[...str('env'), ...str('memory'), 0x02, 0x01, ...uleb(pages), ...uleb(pages)]])),
    ...section(3, vec([uleb(0), uleb(1), uleb(1)])),
    ...section(7, vec([[...str('crc'), 0x00, 0], [...str('check'), 0x00, 1], [...str('run'), 0x00, 2]])),
    ...section(10, vec([[...uleb(func.length), ...func], [...uleb(check.length), ...check], [...uleb(run.length), ...run]])),
  ])
}

type WasmCrc = (ptr: number, end: number, state: number) => number
type WasmCheck = (rec: number, total: number) => number
type WasmRun = (rec: number, end: number) => number

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

/** A fixed-size memory whose buffers can be checked with the WebAssembly engine. */
export class CrcArena {
  readonly memory: WebAssembly.Memory
  readonly pages: number
  private next = ARENA_START
  private readonly fn: WasmCrc
  private readonly checkFn: WasmCheck
  private readonly runFn: WasmRun

  private constructor(memory: WebAssembly.Memory, pages: number, exports: WasmExports) {
    this.memory = memory
    this.pages = pages
    this.fn = exports.crc
    this.checkFn = exports.check
    this.runFn = exports.run
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
}

// Compiled once per memory size (the size is part of the module's memory import).
const modules = new Map<number, WebAssembly.Module>()

interface WasmExports {
  crc: WasmCrc
  check: WasmCheck
  run: WasmRun
}

function instantiate(memory: WebAssembly.Memory, pages: number): WasmExports {
  let module = modules.get(pages)
  if (!module) {
    module = new WebAssembly.Module(wasmModuleBytes(pages))
    modules.set(pages, module)
  }
  const instance = new WebAssembly.Instance(module, {env: {memory}})
  return {crc: instance.exports.crc as WasmCrc, check: instance.exports.check as WasmCheck, run: instance.exports.run as WasmRun}
}
