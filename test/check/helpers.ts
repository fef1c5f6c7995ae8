/**
 * Fake standbys for check tests: START_REPLICATION clients with an application_name that
 * stream from the primary and report every position as written, flushed and applied, so the
 * server counts them as synchronous candidates (as the status tests do, kept running).
 */
import {identifySystem} from '../../src/core/replication/commands.js'
import {PhysicalStream} from '../../src/core/replication/physical-stream.js'
import type {TestCluster} from '../helpers/cluster.js'

export interface FakeStandby {
  name: string
  stop(): Promise<void>
}

export async function fakeStandby(primary: TestCluster, name: string): Promise<FakeStandby> {
  const conn = await primary.connect({extra: {application_name: name}}, 'true')
  const {xlogPos, timeline} = await identifySystem(conn)
  const stream = await PhysicalStream.start(conn, {startLsn: xlogPos - (xlogPos % 16777216n), timeline, statusIntervalSeconds: 1})
  let stopped = false
  let pos = xlogPos
  const pump = (async () => {
    while (!stopped) {
      const e = await stream.next().catch(() => undefined)
      if (!e) return
      if (e.kind === 'data') pos = e.start + BigInt(e.data.length)
      stream.report({written: pos, flushed: pos, applied: pos}, true)
    }
  })()
  return {
    name,
    async stop() {
      stopped = true
      stream.dispose()
      conn.destroy()
      await pump.catch(() => {})
    },
  }
}
