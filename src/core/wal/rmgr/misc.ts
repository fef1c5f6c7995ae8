import {hex2, identifyFrom, lsnOf, mainData, type RmgrDesc, fromText} from './common.js'

/** The small rmgrs: RelMap, Tablespace, ReplicationOrigin, Generic, LogicalMessage. */

export const relmapRmgr: RmgrDesc = {
  name: 'RelMap',
  identify: identifyFrom(() => ({0x00: 'UPDATE'})),
  write: fromText((rec) => {
    const f = mainData(rec)
    // xl_relmap_update: dbid, tsid, nbytes
    return rec.rmgrInfo === 0x00 ? `database ${f.u32(0)} tablespace ${f.u32(4)} size ${f.i32(8)}` : ''
  }),
}

export const tblspcRmgr: RmgrDesc = {
  name: 'Tablespace',
  identify: identifyFrom(() => ({0x00: 'CREATE', 0x10: 'DROP'})),
  write: fromText((rec) => {
    const f = mainData(rec)
    if (rec.rmgrInfo === 0x00) return `${f.u32(0)} "${f.cstring(4)}"`
    if (rec.rmgrInfo === 0x10) return String(f.u32(0))
    return ''
  }),
}

export const replOriginRmgr: RmgrDesc = {
  name: 'ReplicationOrigin',
  // replorigin_identify() switches on the whole info byte.
  identify: identifyFrom(() => ({0x00: 'SET', 0x10: 'DROP'}), {mask: 0xff}),
  write: fromText((rec) => {
    const f = mainData(rec)
    // xl_replorigin_set: remote_lsn, node_id, force; xl_replorigin_drop: node_id
    if (rec.rmgrInfo === 0x00) return `set ${f.u16(8)}; lsn ${lsnOf(f.u64n(0))}; force: ${f.u8(10)}`
    if (rec.rmgrInfo === 0x10) return `drop ${f.u16(0)}`
    return ''
  }),
}

export const genericRmgr: RmgrDesc = {
  name: 'Generic',
  identify: () => 'Generic',
  write: fromText((rec) => {
    // A sequence of (offset, length, data) fragments.
    const f = mainData(rec)
    const parts: string[] = []
    for (let p = 0; p + 4 <= f.length; ) {
      const offset = f.u16(p)
      const length = f.u16(p + 2)
      p += 4 + length
      parts.push(`offset ${offset}, length ${length}`)
    }
    return parts.join('; ')
  }),
}

export const logicalMessageRmgr: RmgrDesc = {
  name: 'LogicalMessage',
  identify: identifyFrom(() => ({0x00: 'MESSAGE'})),
  write: fromText((rec) => {
    if (rec.rmgrInfo !== 0x00) return ''
    const f = mainData(rec)
    // xl_logical_message: dbId, transactional, prefix_size (Size), message_size (Size), prefix, message
    const transactional = f.u8(4) !== 0
    const prefixSize = f.u64n(8)
    const messageSize = f.u64n(16)
    if (!rec.version.logicalMessagePayload) {
      return `${transactional ? 'transactional' : 'nontransactional'} message size ${messageSize} bytes`
    }
    const shown = Math.max(0, Math.min(messageSize, f.length - 24 - prefixSize))
    const bytes: string[] = []
    for (let i = 0; i < shown; i++) bytes.push(hex2(f.u8(24 + prefixSize + i)))
    return `${transactional ? 'transactional' : 'non-transactional'}, prefix "${f.cstring(24, prefixSize)}"; payload (${messageSize} bytes): ${bytes.join(' ')}`
  }),
}
