import {parseLsn} from '../wal/lsn.js'
import type {ArchiveState} from './archive.js'
import {checkDefinition, type ThresholdSet} from './definitions.js'
import type {ServerFacts} from './gather.js'
import {matchesStandbyName, parseSyncStandbyNames} from './sync-names.js'
import {formatQuantity} from './units.js'
import {judge, type CheckResult, type State} from './verdict.js'

export interface EvaluateOptions {
  /** Checks to run; those that do not apply to the target are skipped. */
  selected: Set<string>
  thresholds: Map<string, ThresholdSet>
}

/** A numeric result: judged against the check's thresholds, with a message when not OK. */
function numeric(name: string, target: string, object: string | null, value: number | null, options: EvaluateOptions, base?: number, what?: string): CheckResult {
  const def = checkDefinition(name)
  const {state, warning, critical} = judge(value, def, options.thresholds.get(name)!, base)
  const unit = def.unit === 'state' ? 'count' : def.unit
  const limit = state === 'CRITICAL' ? critical : warning
  const shown = value === null ? 'unknown' : formatQuantity(value, unit)
  const message = state === 'OK'
    ? `${what ?? name}${object ? ` ${object}` : ''} ${shown}`
    : `${what ?? name}${object ? ` ${object}` : ''} ${shown} (${def.direction === 'above' ? '>' : '<'} ${formatQuantity(limit!, unit)})`
  return {check: name, target, object, state, value, unit, warning, critical, direction: def.direction, message}
}

function condition(name: string, target: string, object: string | null, state: State, message: string): CheckResult {
  return {check: name, target, object, state, value: null, unit: 'state', warning: null, critical: null, direction: 'above', message}
}

function diff(a: string | null, b: string | null): number | null {
  if (!a || !b) return null
  const d = parseLsn(a) - parseLsn(b)
  return Number(d < 0n ? 0n : d)
}

/** Recovery conflicts since the previous check (last-check.ts); undefined: nothing remembered, count since the statistics reset. */
export interface ConflictsSince {
  value: number
  /** When the previous check read them; null on the first check. */
  sinceMs: number | null
}

export function evaluateServer(target: string, facts: ServerFacts, options: EvaluateOptions, conflictsSinceLast?: ConflictsSince): CheckResult[] {
  const s = facts.status
  const on = (name: string) => options.selected.has(name)
  const out: CheckResult[] = []

  // WAL senders: a primary's standbys, or a cascading standby's downstreams.
  for (const w of s.walSenders) {
    const name = w.applicationName || String(w.pid)
    if (on('lag_bytes')) {
      for (const [kind, lsn] of [['write', w.writeLsn], ['flush', w.flushLsn], ['replay', w.replayLsn]] as const) {
        out.push(numeric('lag_bytes', target, `${name} ${kind}`, diff(facts.position, lsn), options, undefined, 'lag'))
      }
    }
    if (on('lag_time')) {
      for (const [kind, v] of [['write', w.writeLagSeconds], ['flush', w.flushLagSeconds], ['replay', w.replayLagSeconds]] as const) {
        // NULL lag: the standby has caught up and nothing was written since.
        out.push(numeric('lag_time', target, `${name} ${kind}`, v ?? 0, options, undefined, 'lag'))
      }
    }
  }

  if (on('sync_standbys') && s.role === 'primary') out.push(syncStandbys(target, facts, options))

  for (const slot of s.slots) {
    if (on('slot_retention')) out.push(numeric('slot_retention', target, slot.name, slot.retainedBytes, options, undefined, 'slot retains'))
    if (on('slot_wal_status') && slot.walStatus) {
      const state: State = slot.walStatus === 'lost' ? 'CRITICAL' : slot.walStatus === 'unreserved' ? 'WARNING' : 'OK'
      const why = slot.walStatus === 'lost' ? ': WAL it needs was removed' : slot.walStatus === 'unreserved' ? ': WAL it needs will be removed at the next checkpoint' : ''
      out.push(condition('slot_wal_status', target, slot.name, state, `slot ${slot.name} wal_status ${slot.walStatus}${slot.invalidationReason ? ` (${slot.invalidationReason})` : ''}${why}`))
    }
    if (on('slot_safe_wal_size') && slot.safeWalSize !== null && facts.maxSlotWalKeepSize >= 0) {
      out.push(numeric('slot_safe_wal_size', target, slot.name, slot.safeWalSize, options, facts.maxSlotWalKeepSize, 'slot safe_wal_size'))
    }
    if (on('slot_catalog_xmin_age') && facts.catalogXminAge.has(slot.name)) {
      out.push(numeric('slot_catalog_xmin_age', target, slot.name, facts.catalogXminAge.get(slot.name)!, options, undefined, 'slot catalog_xmin age'))
    }
  }
  if (on('slot_inactive')) {
    const inactive = s.slots.filter((x) => !x.active && !x.temporary).map((x) => x.name)
    const r = numeric('slot_inactive', target, null, inactive.length, options, undefined, 'inactive slots')
    if (inactive.length) r.message += `: ${inactive.join(', ')}`
    out.push(r)
  }

  if (s.role === 'standby') {
    if (on('receiver')) {
      const r = s.receiver
      const streaming = r?.status === 'streaming'
      out.push(condition('receiver', target, null, streaming ? 'OK' : 'CRITICAL', r ? `WAL receiver ${r.status}${r.senderHost ? ` from ${r.senderHost}:${r.senderPort}` : ''}` : 'no WAL receiver running'))
    }
    if (on('replay_paused')) {
      const paused = s.replay?.paused ?? false
      out.push(condition('replay_paused', target, null, paused ? 'WARNING' : 'OK', paused ? 'replay paused' : 'replay running'))
    }
    if (on('replay_lag_bytes')) out.push(numeric('replay_lag_bytes', target, null, s.replay?.lagBytes ?? null, options, undefined, 'replay lag'))
    if (on('replay_lag_time')) out.push(numeric('replay_lag_time', target, null, s.replay?.lagSeconds ?? null, options, undefined, 'replay lag'))
    if (on('conflicts') && s.conflicts) out.push(conflicts(target, s.conflicts.total, conflictsSinceLast, options))
  }
  return out
}

function conflicts(target: string, total: number, since: ConflictsSince | undefined, options: EvaluateOptions): CheckResult {
  const r = numeric('conflicts', target, null, since ? since.value : total, options)
  const limit = r.state === 'CRITICAL' ? r.critical : r.warning
  const over = r.state === 'OK' ? '' : ` (> ${limit})`
  const plural = (n: number) => `${n} recovery conflict${n === 1 ? '' : 's'}`
  if (!since) r.message = `${plural(total)}${over} since statistics were reset`
  else if (since.sinceMs === null) r.message = `${plural(0)}${over} since the last check (the first: ${total} since statistics were reset)`
  else r.message = `${plural(since.value)}${over} since the last check at ${new Date(since.sinceMs).toISOString().replace(/\.\d+Z$/, 'Z')}${since.value ? ' (queries cancelled on the standby)' : ''}`
  return r
}

/**
 * How many of the standbys synchronous_standby_names names are not streaming as synchronous
 * candidates; CRITICAL when fewer than its n are (commits then wait).
 */
function syncStandbys(target: string, facts: ServerFacts, options: EvaluateOptions): CheckResult {
  const sync = syncStandbyState(facts)
  if (!sync) return {...numeric('sync_standbys', target, null, 0, options), message: 'no synchronous standbys configured'}
  const {config, candidates, missing, wildcard, strays, value} = sync
  const form = `${config.method === 'quorum' ? 'ANY' : 'FIRST'} ${config.num}`
  const r = numeric('sync_standbys', target, null, value, options, undefined, 'missing synchronous standbys')
  if (candidates.length < config.num) {
    r.state = 'CRITICAL'
    r.message = `${candidates.length} of ${form} synchronous standbys streaming, commits wait`
  } else if (value > 0 || r.state !== 'OK') {
    r.message = `${value} of ${form} (${config.names.join(', ')}) synchronous standbys missing`
  } else {
    r.message = `${candidates.length} synchronous standbys streaming for ${form}`
  }
  if (missing.length && !wildcard) r.message += `: ${missing.join(', ')}`
  // A standby meant to be synchronous that connected under another application_name streams async.
  if (value > 0 && strays.length) r.message += ` (streaming async, not named in synchronous_standby_names: ${strays.join(', ')})`
  if (facts.synchronousCommit === 'off' || facts.synchronousCommit === 'local') {
    if (r.state === 'OK') r.state = 'WARNING'
    r.message += `; synchronous_commit is ${facts.synchronousCommit}: commits do not wait for the synchronous standbys, they run async`
  }
  return r
}

/** synchronous_standby_names against the WAL senders: candidates streaming, names missing. */
export function syncStandbyState(facts: ServerFacts) {
  const config = parseSyncStandbyNames(facts.status.synchronousStandbyNames)
  if (!config) return null
  // A candidate streams and has a priority (sync, potential or quorum); async means not listed.
  const candidates = facts.status.walSenders.filter((w) => w.state === 'streaming' && w.syncState !== null && w.syncState !== 'async' && config.names.some((n) => matchesStandbyName(n, w.applicationName)))
  const named = config.names.filter((n) => n !== '*')
  const missing = named.filter((n) => !candidates.some((w) => matchesStandbyName(n, w.applicationName)))
  const wildcard = named.length !== config.names.length
  const strays = facts.status.walSenders.filter((w) => w.state === 'streaming' && w.syncState === 'async').map((w) => w.applicationName || String(w.pid))
  return {config, candidates, missing, wildcard, strays, value: wildcard ? Math.max(0, config.num - candidates.length) : missing.length}
}

export function evaluateArchive(dir: string, archive: ArchiveState, position: string | null, segmentSize: number, nowMs: number, options: EvaluateOptions): CheckResult[] {
  const out: CheckResult[] = []
  if (archive.archivedUpTo === null) {
    for (const name of ['archive_lag_bytes', 'archive_age']) {
      if (options.selected.has(name)) out.push(condition(name, dir, null, 'CRITICAL', `no WAL segments in ${dir}`))
    }
    return out
  }
  const pos = position ? parseLsn(position) : null
  if (options.selected.has('archive_lag_bytes')) {
    const lag = pos === null ? null : Number(pos > archive.archivedUpTo ? pos - archive.archivedUpTo : 0n)
    out.push(numeric('archive_lag_bytes', dir, null, lag, options, undefined, 'archive lag'))
  }
  if (options.selected.has('archive_age')) {
    // Still inside the newest file's segment: nothing written since is missing from the archive yet.
    const current = pos !== null && pos / BigInt(segmentSize) <= archive.newestSegno!
    const age = current ? 0 : Math.max(0, (nowMs - archive.newestMtimeMs!) / 1000)
    const r = numeric('archive_age', dir, null, Math.round(age * 10) / 10, options, undefined, 'archive age')
    r.message += ` (newest ${archive.newestFile})`
    out.push(r)
  }
  return out
}

export function evaluateBackup(dir: string, manifest: {path: string; mtimeMs: number} | null, nowMs: number, options: EvaluateOptions): CheckResult[] {
  if (!options.selected.has('backup_age')) return []
  if (!manifest) return [condition('backup_age', dir, null, 'CRITICAL', `no backup_manifest in ${dir}`)]
  const age = Math.max(0, Math.round((nowMs - manifest.mtimeMs) / 100) / 10)
  const r = numeric('backup_age', dir, null, age, options, undefined, 'backup age')
  r.message += ` (${manifest.path})`
  return [r]
}
