/**
 * Little-endian field readers over a Uint8Array. WAL is written in the server's byte order;
 * every platform PostgreSQL supports in practice for these tools is little-endian, as is
 * pg_waldump's own assumption when reading files from the same architecture.
 *
 * Plain byte arithmetic is faster in V8 than DataView or Buffer#readUInt32LE in the hot loop.
 */

export function u16(b: Uint8Array, o: number): number {
  return b[o]! | (b[o + 1]! << 8)
}

export function u32(b: Uint8Array, o: number): number {
  return (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0
}

export function i32(b: Uint8Array, o: number): number {
  return b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)
}

/** Unsigned 64-bit as a Number; exact below 2^53 (LSNs, sizes). */
export function u64n(b: Uint8Array, o: number): number {
  return u32(b, o + 4) * 4294967296 + u32(b, o)
}

/** Signed 64-bit as a Number; exact within ±2^53 (timestamps in microseconds). */
export function i64n(b: Uint8Array, o: number): number {
  return i32(b, o + 4) * 4294967296 + u32(b, o)
}

export function u64(b: Uint8Array, o: number): bigint {
  return (BigInt(u32(b, o + 4)) << 32n) | BigInt(u32(b, o))
}

/** PostgreSQL's MAXALIGN: up to the next multiple of 8 (records start 8-byte aligned). */
export function align8(n: number): number {
  return n + ((8 - (n % 8)) % 8)
}
