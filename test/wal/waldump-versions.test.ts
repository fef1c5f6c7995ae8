/**
 * For every supported major: WAL a real server wrote decodes end to end, and operations we
 * performed are found where the server says they are.
 */
import test from 'ava'

import {parseLsn} from '../../src/core/wal/lsn.js'
import {lsnText} from '../../src/core/wal/record.js'
import {pgVersions, startCluster, type TestCluster} from '../helpers/cluster.js'
import {countRange, currentLsn, describe as describeRecord, readRange, walDirectoryOf} from './wal-test-helpers.js'

const ROWS = 250

for (const major of pgVersions()) {
  test(`WAL of PostgreSQL ${major} decodes end to end and shows our inserts, commit and checkpoint`, async (t) => {
    const cluster: TestCluster = await startCluster({version: major, config: {max_prepared_transactions: 5}})
    t.teardown(() => cluster.destroy())
    const dir = await walDirectoryOf(cluster)

    // Everything since the cluster's first WAL segment: initdb's bootstrap, our workload.
    await cluster.sql('CREATE TABLE items (id int PRIMARY KEY, label text); CREATE SEQUENCE s')
    const relfilenode = Number(await cluster.value("SELECT pg_relation_filenode('items')"))
    const [{xid, start}] = (await cluster.query(
      `BEGIN;
       INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, ${ROWS}) g;
       SELECT pg_current_xact_id()::text AS xid, pg_current_wal_insert_lsn()::text AS start;
       COMMIT;`,
    )) as Array<{xid: string; start: string}>
    await cluster.sql("SELECT nextval('s'); BEGIN; DELETE FROM items WHERE id <= 10; ROLLBACK; UPDATE items SET label = 'changed' WHERE id = 20")
    await cluster.sql('VACUUM items')
    await cluster.sql('CHECKPOINT')
    const checkpoint = (await cluster.query('SELECT checkpoint_lsn::text, redo_lsn::text FROM pg_control_checkpoint()'))[0]!
    await cluster.sql("BEGIN; INSERT INTO items VALUES (100000, 'prepared'); PREPARE TRANSACTION 'p1'")
    await cluster.sql("COMMIT PREPARED 'p1'")
    const end = await currentLsn(cluster)

    const firstSegmentStart = BigInt(dir.segmentSize) // initdb starts WAL in segment 1
    const result = await readRange(dir, firstSegmentStart, end)
    t.is(result.failure, undefined, result.failure?.message)
    t.is(result.major, major)
    const records = result.records
    t.true(records.length > 1000, `${records.length} records`)
    // The chain is unbroken: each record starts where the previous one ended (past the page
    // header when that was a page boundary).
    for (let i = 1; i < records.length; i++) {
      const end = records[i - 1]!.end
      const header = end % dir.segmentSize === 0 ? 40 : end % 8192 === 0 ? 24 : 0
      if (records[i]!.lsn !== end + header) t.fail(`gap before ${describeRecord(records[i]!)}`)
    }

    const txid = Number(BigInt(xid) % 2n ** 32n)
    const inserts = records.filter((r) => r.rmgr === 'Heap' && r.type.startsWith('INSERT') && r.xid === txid && r.blocks[0]?.rel.endsWith(`/${relfilenode}`))
    t.is(inserts.length, ROWS, 'one heap INSERT per row on the table\'s relfilenode')
    // Descriptions follow the version's wording: "off 5 flags 0x00" until 15, "off: 5, flags: 0x00" after.
    t.regex(inserts[1]!.description, major >= 16 ? /^off: \d+, flags: 0x[0-9A-F]{2}$/ : /^off \d+ flags 0x[0-9A-F]{2}$/)
    t.true(inserts.every((r) => r.lsn < Number(parseLsn(start))))
    const commit = records.find((r) => r.rmgr === 'Transaction' && r.type === 'COMMIT' && r.xid === txid)
    t.truthy(commit, `commit record of xid ${txid}`)

    const ckpt = records.find((r) => r.lsn === Number(parseLsn(checkpoint.checkpoint_lsn!)))
    t.truthy(ckpt, `a record at the checkpoint LSN ${checkpoint.checkpoint_lsn}`)
    t.is(`${ckpt?.rmgr}/${ckpt?.type}`, 'XLOG/CHECKPOINT_ONLINE')
    t.true(ckpt!.description.startsWith(`redo ${lsnText(Number(parseLsn(checkpoint.redo_lsn!)))}; tli 1;`), ckpt!.description)

    t.truthy(records.find((r) => r.rmgr === 'Transaction' && r.type === 'PREPARE' && r.description.startsWith('gid p1: ')))
    t.truthy(records.find((r) => r.rmgr === 'Transaction' && r.type === 'COMMIT_PREPARED'))
    t.truthy(records.find((r) => r.rmgr === 'Transaction' && r.type === 'ABORT'), 'the rolled-back DELETE')
    t.truthy(records.find((r) => r.rmgr === 'Sequence' && r.type === 'LOG'))
    t.truthy(records.find((r) => r.rmgr === 'Storage' && r.type === 'CREATE' && r.description.endsWith(`/${relfilenode}`)))
    // No record type is unknown to the version's tables.
    t.deepEqual(records.filter((r) => r.type.startsWith('UNKNOWN')).map(describeRecord), [])

    // Statistics counted in bulk (the WebAssembly walker, with this version's block header
    // flags) equal statistics counted record by record, and cover every record.
    const {walked, ...bulk} = await countRange(dir, firstSegmentStart, end, true)
    const {walked: none, ...single} = await countRange(dir, firstSegmentStart, end, false)
    t.deepEqual(bulk, single)
    t.is(bulk.records, records.length)
    t.true(walked > records.length / 2 && none === 0, `${walked} of ${records.length} records counted by the walker`)
  })
}
