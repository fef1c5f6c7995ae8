/**
 * Damaged WAL never crashes or hangs the decoder: seeded mutations (bit flips, random bytes,
 * zeroed spans, truncated and replaced segments, record bodies re-checksummed after damage)
 * of WAL a real server wrote, and random record contents fed to every description.
 */
import {readFileSync, readdirSync} from 'node:fs'
import {join} from 'node:path'

import test from 'ava'

import {ReplError} from '../../src/core/errors.js'
import {CRC32C_INIT, crc32cFinish, crc32cUpdate} from '../../src/core/wal/crc32c.js'
import {parseLsn, parseWalFileName, walFileName} from '../../src/core/wal/lsn.js'
import {WAL_VERSIONS} from '../../src/core/wal/page.js'
import {WalReader} from '../../src/core/wal/record-reader.js'
import {WalRecord} from '../../src/core/wal/record.js'
import {BUILTIN_RMGRS} from '../../src/core/wal/rmgr/index.js'
import type {SegmentFile, SegmentSource} from '../../src/core/wal/segment-source.js'
import {formatRecord} from '../../src/core/waldump/waldump-format.js'
import {pgVersions, startCluster} from '../helpers/cluster.js'
import {countRange} from './wal-test-helpers.js'

const SEGMENT = 1024 * 1024
const CASES = 1200

/** Segments held in memory, so each case can damage them and put them back. */
class MemorySource implements SegmentSource {
  readonly segmentSize = SEGMENT
  /** A segment cut short for this case. */
  truncate: {segno: bigint; length: number} | undefined

  constructor(readonly segments: Map<bigint, Buffer>) {}

  segmentName(segno: bigint): string {
    return walFileName(1, segno, SEGMENT)
  }

  async openSegment(segno: bigint): Promise<SegmentFile | undefined> {
    const data = this.segments.get(segno)
    if (!data) return undefined
    const length = this.truncate?.segno === segno ? this.truncate.length : data.length
    return {
      path: this.segmentName(segno),
      name: this.segmentName(segno),
      compression: 'none',
      read: async (target, targetOffset, offset, len) => {
        const n = Math.max(0, Math.min(len, length - offset))
        target.set(data.subarray(offset, offset + n), targetOffset)
        return n
      },
      close: async () => {},
    }
  }
}

class Rng {
  constructor(private s: number) {}
  next(): number {
    // xorshift32
    this.s ^= this.s << 13
    this.s ^= this.s >>> 17
    this.s ^= this.s << 5
    return this.s >>> 0
  }
  below(n: number): number {
    return this.next() % n
  }
}

interface Outcome {
  records: number
  failure?: string
}

/** Read everything, printing each record; never more steps than the data could justify. */
async function readAll(source: MemorySource, start: bigint): Promise<Outcome> {
  const reader = new WalReader(source, {start, chunkSize: 256 * 1024, prefetch: 1})
  let records = 0
  let steps = 0
  const maxSteps = 200_000
  for (;;) {
    if (++steps > maxSteps) throw new Error('reader made no progress (hang)')
    const s = reader.read()
    if (s === 'record') {
      // Describing every record would dominate the run time; a sample covers the code.
      if (records++ % 8 === 0) formatRecord(reader.record, steps % 2 === 0)
    } else if (s === 'need-data') {
      await reader.fill()
    } else {
      break
    }
  }
  await reader.close()
  return {records, failure: reader.failure?.message}
}

async function realWal(): Promise<{source: MemorySource; start: bigint; baseline: Outcome}> {
  const major = pgVersions().at(-1)!
  const cluster = await startCluster({version: major, initdbArgs: ['--wal-segsize=1'], config: {wal_keep_size: '64MB', max_prepared_transactions: 2}})
  try {
    await cluster.sql('SELECT pg_switch_wal()')
    const start = parseLsn((await cluster.value('SELECT pg_current_wal_insert_lsn()'))!)
    await cluster.sql("CREATE TABLE f (id int PRIMARY KEY, t text); INSERT INTO f SELECT g, repeat('v', g % 200) FROM generate_series(1, 1500) g")
    await cluster.sql('UPDATE f SET t = t || id WHERE id % 3 = 0')
    await cluster.sql('DELETE FROM f WHERE id % 5 = 0')
    await cluster.sql('VACUUM f')
    await cluster.sql("BEGIN; INSERT INTO f VALUES (-1, 'p'); PREPARE TRANSACTION 'fz'")
    await cluster.sql("COMMIT PREPARED 'fz'")
    await cluster.sql('CHECKPOINT')
    await cluster.sql("INSERT INTO f SELECT -g, 'after checkpoint' FROM generate_series(2, 200) g")
    const end = parseLsn((await cluster.value('SELECT pg_current_wal_lsn()'))!)
    const pgWal = join(cluster.dataDir, 'pg_wal')
    const segments = new Map<bigint, Buffer>()
    for (const name of readdirSync(pgWal)) {
      const parsed = parseWalFileName(name, SEGMENT)
      if (parsed && parsed.segno >= start / BigInt(SEGMENT) && parsed.segno <= end / BigInt(SEGMENT)) segments.set(parsed.segno, readFileSync(join(pgWal, name)))
    }
    const source = new MemorySource(segments)
    return {source, start, baseline: await readAll(source, start)}
  } finally {
    await cluster.destroy()
  }
}

test(`${CASES} seeded mutations of real WAL end in clean errors, never an exception or a hang`, async (t) => {
  const {source, start, baseline} = await realWal()
  t.true(baseline.records > 2000, `undamaged WAL reads ${baseline.records} records`)
  const segnos = [...source.segments.keys()]
  const rng = new Rng(0x5eed1234)
  const kinds = new Map<string, number>()
  const messages = new Set<string>()
  let bulkChecked = 0
  let walked = 0
  for (let i = 0; i < CASES; i++) {
    const segno = segnos[rng.below(segnos.length)]!
    const seg = source.segments.get(segno)!
    const undo: Array<[number, Buffer]> = []
    const save = (at: number, n: number): void => {
      undo.push([at, Buffer.from(seg.subarray(at, at + n))])
    }
    const kind = ['flip', 'flip-header', 'random-bytes', 'zeros', 'truncate', 'random-page', 'record-recrc'][i % 7]!
    kinds.set(kind, (kinds.get(kind) ?? 0) + 1)
    if (kind === 'flip' || kind === 'flip-header') {
      // Headers (page and record) are where most decisions are made: aim there half the time.
      for (let k = 1 + rng.below(4); k > 0; k--) {
        const at = kind === 'flip' ? rng.below(seg.length) : rng.below(seg.length / 8192) * 8192 + rng.below(64)
        save(at, 1)
        seg[at] = seg[at]! ^ (1 << rng.below(8))
      }
    } else if (kind === 'random-bytes' || kind === 'zeros') {
      const n = 1 + rng.below(64)
      const at = rng.below(seg.length - n)
      save(at, n)
      for (let k = 0; k < n; k++) seg[at + k] = kind === 'zeros' ? 0 : rng.below(256)
    } else if (kind === 'truncate') {
      source.truncate = {segno, length: rng.below(seg.length)}
    } else if (kind === 'random-page') {
      const at = rng.below(seg.length / 8192) * 8192
      save(at, 8192)
      for (let k = 0; k < 8192; k++) seg[at + k] = rng.below(256)
    } else {
      // Damage a record's body inside one page and fix its CRC, so the decoder's structure
      // checks (block ids, lengths, flags) see garbage that passes the checksum.
      const page = rng.below(seg.length / 8192) * 8192
      const hs = seg[page + 2]! & 2 ? 40 : 24
      let at = page + hs + (seg[page + 2]! & 1 ? (seg.readUInt32LE(page + 16) + 7) & ~7 : 0)
      // The page's first record, or one after it (those are what statistics count in bulk).
      for (let k = rng.below(6); k > 0 && at + 24 <= page + 8192; k--) {
        const next = at + ((seg.readUInt32LE(at) + 7) & ~7)
        if (next + 24 > page + 8192) break
        at = next
      }
      const total = at + 24 <= page + 8192 ? seg.readUInt32LE(at) : 0
      if (total > 24 && at + total <= page + 8192) {
        save(at, total)
        for (let k = 1 + rng.below(6); k > 0; k--) seg[at + 24 + rng.below(total - 24)] = rng.below(256)
        const crc = crc32cUpdate(crc32cUpdate(CRC32C_INIT, seg, at + 24, at + total), seg, at, at + 20)
        seg.writeUInt32LE(crc32cFinish(crc), at + 20)
      }
    }
    try {
      // Statistics in bulk (the WebAssembly walker) accept exactly what record-by-record
      // reading accepts, and stop with the same error.
      const bulk = await countRange(source, start, undefined, true, {chunkSize: 256 * 1024, prefetch: 1})
      const single = await countRange(source, start, undefined, false, {chunkSize: 256 * 1024, prefetch: 1})
      if (JSON.stringify({...bulk, walked: 0}) !== JSON.stringify(single)) {
        t.fail(`case ${i} (${kind}): bulk statistics differ: ${bulk.records} records, ${bulk.failure} against ${single.records}, ${single.failure}`)
        break
      }
      bulkChecked++
      walked += bulk.walked
      const outcome = await readAll(source, start)
      if (outcome.failure) messages.add(outcome.failure.replace(/[0-9A-F]+\/[0-9A-F]+/g, 'X/X').replace(/\b[0-9A-F]*\d[0-9A-F]*\b|\b[0-9A-F]{4}\b/g, 'N'))
      else t.true(outcome.records > 0)
    } catch (err) {
      t.fail(`case ${i} (${kind}): ${err instanceof ReplError ? 'ReplError' : 'exception'}: ${(err as Error).stack}`)
      break
    } finally {
      for (const [at, bytes] of undo.reverse()) bytes.copy(seg, at)
      source.truncate = undefined
    }
  }
  t.log(`${CASES} cases (${[...kinds].map(([k, n]) => `${k} ${n}`).join(', ')}); ${messages.size} distinct failure messages`)
  if (process.env.SHOW_FUZZ_MESSAGES) t.log([...messages].sort().join("\n"))
  t.true(messages.size >= 8, [...messages].join("\n"))
  t.is(bulkChecked, CASES)
  t.true(walked > CASES * 1000, `${walked} records counted by the walker`)
})

test('descriptions of every rmgr and version never throw on random record contents', (t) => {
  const rng = new Rng(0xdecaf)
  const rec = new WalRecord()
  const buf = Buffer.alloc(4096)
  let described = 0
  for (const version of WAL_VERSIONS) {
    for (let rmid = 0; rmid < BUILTIN_RMGRS.length; rmid++) {
      for (let i = 0; i < 64; i++) {
        for (let k = 0; k < buf.length; k++) buf[k] = rng.below(256)
        // A record with no block references and random main data of random length.
        const mainLength = rng.below(i % 4 === 0 ? 3000 : 120)
        const total = 24 + (mainLength < 256 ? 2 : 5) + mainLength
        buf.writeUInt32LE(total, 0)
        buf[16] = (i & 0xf) << 4 | (rng.below(2) ? 0 : rng.below(16))
        buf[17] = rmid
        if (mainLength < 256) {
          buf[24] = 255
          buf[25] = mainLength
        } else {
          buf[24] = 254
          buf.writeUInt32LE(mainLength, 25)
        }
        rec.version = version
        rec.buf = buf
        rec.off = 0
        rec.lsn = 0x1000028
        rec.totalLength = total
        rec.info = buf[16]!
        rec.rmid = rmid
        rec.mainDataLength = mainLength
        rec.mainDataOffset = total - mainLength
        rec.resetBlocks()
        const text = formatRecord(rec, i % 2 === 0)
        t.true(text.endsWith('\n'))
        described++
      }
    }
  }
  t.is(described, WAL_VERSIONS.length * BUILTIN_RMGRS.length * 64)
})
