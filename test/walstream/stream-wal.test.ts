import {readFile} from 'node:fs/promises'
import {join} from 'node:path'

import test from 'ava'

import {identifySystem, walSegmentSize} from '../../src/core/replication/commands.js'
import {WalStreamer, type StreamWalEvent} from '../../src/core/walstream/stream-wal.js'
import type {WalSink} from '../../src/core/walstream/wal-sink.js'
import {lsnToSegment, parseLsn, segmentStartLsn, walFileName, type Lsn} from '../../src/core/wal/lsn.js'
import {clusterPerMajor, pgVersions} from '../helpers/cluster.js'

/**
 * The shared streaming loop against real servers, with a sink that keeps WAL in memory: what
 * the loop hands over must be exactly the server's WAL, in order, ending where asked.
 */
class MemorySink implements WalSink {
  readonly writes: Array<{timeline: number; start: Lsn; length: number}> = []
  readonly chunks: Buffer[] = []
  readonly history = new Map<string, string>()
  flushCalls = 0
  closed?: string
  private end = 0n

  async write(timeline: number, start: Lsn, data: Buffer): Promise<void> {
    this.writes.push({timeline, start, length: data.length})
    this.chunks.push(Buffer.from(data))
    this.end = start + BigInt(data.length)
  }

  async flush(): Promise<Lsn> {
    this.flushCalls++
    return this.end
  }

  async writeHistoryFile(name: string, content: Buffer): Promise<void> {
    this.history.set(name, content.toString('utf8'))
  }

  async close(options: {reason: string}): Promise<void> {
    this.closed = options.reason
  }

  get bytes(): Buffer {
    return Buffer.concat(this.chunks)
  }
}

const clusters = clusterPerMajor(test)

for (const version of pgVersions()) {
  test.serial(`the streaming loop hands a sink the server's WAL byte for byte, up to endpos exactly (PG ${version})`, async (t) => {
    const c = clusters.get(version)!
    await c.query('CREATE TABLE IF NOT EXISTS loop_t(x int); INSERT INTO loop_t SELECT generate_series(1, 20000)')
    const conn = await c.connect({}, 'true')
    try {
      const id = await identifySystem(conn)
      const segmentSize = await walSegmentSize(conn)
      const endpos = id.xlogPos - 123n
      const sink = new MemorySink()
      const events: StreamWalEvent[] = []
      const result = await new WalStreamer({connection: conn, sink, startLsn: id.xlogPos, timeline: id.timeline, segmentSize, endpos, onStreamEvent: (e) => events.push(e)}).run()

      const segStart = segmentStartLsn(lsnToSegment(id.xlogPos, segmentSize), segmentSize)
      t.is(result.reason, 'endpos')
      t.is(result.written, endpos)
      t.is(result.flushed, endpos)
      t.is(sink.closed, 'end')
      t.is(sink.writes[0]!.start, segStart, 'streaming starts at the segment boundary')
      const got = sink.bytes
      t.is(BigInt(got.length), endpos - segStart)
      // Same bytes as the server's own segment file (fsync=off servers still write pg_wal).
      await c.query('CHECKPOINT')
      const onDisk = await readFile(join(c.dataDir, 'pg_wal', walFileName(id.timeline, lsnToSegment(segStart, segmentSize), segmentSize)))
      t.true(got.equals(onDisk.subarray(0, got.length)))
      t.true(events.some((e) => e.type === 'streaming'))
      // The connection is usable afterwards.
      t.is((await identifySystem(conn)).systemId, id.systemId)
    } finally {
      await conn.close()
    }
  })

  test.serial(`the streaming loop stops cleanly on abort and at stopAt() (PG ${version})`, async (t) => {
    const c = clusters.get(version)!
    const conn = await c.connect({}, 'true')
    try {
      const id = await identifySystem(conn)
      const segmentSize = await walSegmentSize(conn)
      const controller = new AbortController()
      const sink = new MemorySink()
      const streamer = new WalStreamer({connection: conn, sink, startLsn: id.xlogPos, timeline: id.timeline, segmentSize, signal: controller.signal, statusIntervalSeconds: 1})
      const running = streamer.run()
      setTimeout(() => controller.abort(), 1500)
      const result = await running
      t.is(result.reason, 'interrupted')
      t.is(sink.closed, 'interrupted')
      t.true(result.written >= id.xlogPos)

      // stopAt() from outside, at a position the server reaches only later.
      const sink2 = new MemorySink()
      const streamer2 = new WalStreamer({connection: conn, sink: sink2, startLsn: id.xlogPos, timeline: id.timeline, segmentSize})
      const running2 = streamer2.run()
      await c.query('INSERT INTO loop_t SELECT generate_series(1, 5000)')
      const target = parseLsn((await c.value('SELECT pg_current_wal_lsn()'))!)
      streamer2.stopAt(target)
      const result2 = await running2
      t.is(result2.reason, 'endpos')
      t.is(result2.written, target)
    } finally {
      await conn.close()
    }
  })
}
