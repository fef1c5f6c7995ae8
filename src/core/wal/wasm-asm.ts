/**
 * Just enough of a WebAssembly assembler for the WAL reader's small modules: instructions as
 * byte lists, and the binary format's sections. The modules are built at run time from these
 * lists rather than shipped as binaries, so their source stays readable next to the JS.
 */

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

export const I32 = 0x7f

// Locals, constants, memory (alignment hints: natural for aligned words, 0 where unaligned).
export const get = (i: number): number[] => [0x20, i]
export const set = (i: number): number[] => [0x21, i]
export const i32 = (n: number): number[] => [0x41, ...sleb(n)]
export const load = (offset: number, align = 2): number[] => [0x28, align, ...uleb(offset)]
export const load8 = (offset: number): number[] => [0x2d, 0, ...uleb(offset)]
export const load16 = (offset: number): number[] => [0x2f, 0, ...uleb(offset)]
export const store = (offset: number): number[] => [0x36, 2, ...uleb(offset)]
export const f64load = (offset: number): number[] => [0x2b, 3, ...uleb(offset)]
export const f64store = (offset: number): number[] => [0x39, 3, ...uleb(offset)]
export function f64(n: number): number[] {
  const b = Buffer.alloc(8)
  b.writeDoubleLE(n)
  return [0x44, ...b]
}

// i32 arithmetic and comparisons
export const ADD = [0x6a]
export const SUB = [0x6b]
export const AND = [0x71]
export const OR = [0x72]
export const XOR = [0x73]
export const SHL = [0x74]
export const SHRU = [0x76]
export const EQZ = [0x45]
export const EQ = [0x46]
export const NE = [0x47]
export const LTS = [0x48]
export const LTU = [0x49]
export const GTS = [0x4a]
export const GTU = [0x4b]
export const LEU = [0x4d]
export const GEU = [0x4f]
export const F64ADD = [0xa0]
export const F64_FROM_U32 = [0xb8]

// Control
export const BLOCK = [0x02, 0x40]
export const LOOP = [0x03, 0x40]
export const IF = [0x04, 0x40]
export const ELSE = [0x05]
export const END = [0x0b]
export const RETURN = [0x0f]
export const br = (depth: number): number[] => [0x0c, depth]
export const brIf = (depth: number): number[] => [0x0d, depth]
export const call = (f: number): number[] => [0x10, f]

export interface WasmFunction {
  name: string
  params: number[]
  results: number[]
  /** Extra locals, by type, after the parameters. */
  locals: number[]
  body: number[]
}

/** A module of `functions`, all exported, over one imported memory of exactly `pages`. */
export function moduleBytes(pages: number, functions: WasmFunction[]): Uint8Array {
  const str = (t: string): number[] => [...uleb(t.length), ...Buffer.from(t)]
  const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()]
  const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body]
  const code = (f: WasmFunction): number[] => {
    // Consecutive locals of one type form one declaration.
    const groups: number[][] = []
    for (const t of f.locals) {
      const last = groups[groups.length - 1]
      if (last && last[1] === t) last[0]!++
      else groups.push([1, t])
    }
    const body = [...vec(groups.map(([n, t]) => [...uleb(n!), t!])), ...f.body, ...END]
    return [...uleb(body.length), ...body]
  }
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    // one type per function, in order
    ...section(1, vec(functions.map((f) => [0x60, ...vec(f.params.map((t) => [t])), ...vec(f.results.map((t) => [t]))]))),
    // imported memory: flags 0x01 = has maximum
    ...section(2, vec([[...str('env'), ...str('memory'), 0x02, 0x01, ...uleb(pages), ...uleb(pages)]])),
    ...section(3, vec(functions.map((_, i) => uleb(i)))),
    ...section(7, vec(functions.map((f, i) => [...str(f.name), 0x00, ...uleb(i)]))),
    ...section(10, vec(functions.map(code))),
  ])
}
