import {access, constants as fsConstants, mkdir, rename, symlink} from 'node:fs/promises'
import {join} from 'node:path'
import type {Writable} from 'node:stream'

import {fromSystemError, ReplError} from '../errors.js'
import {algorithmOfFileName, decompressStream, describeCompression, FILE_SUFFIX, type CompressionSpec} from '../compress/index.js'
import {standbyConninfo, type ResolvedConnection} from '../conninfo/resolve.js'
import type {Connected} from '../pg/connect.js'
import type {PgConnection} from '../pg/connection.js'
import {capabilitiesOf, createReplicationSlot, dropReplicationSlot, identifySystem, readReplicationSlot, showSetting, walSegmentSize} from '../replication/commands.js'
import {WalStreamer} from '../receive/stream-wal.js'
import {standbyAutoConfText, writeStandbyConfig} from '../server/standby-config.js'
import {formatLsn} from '../wal/lsn.js'
import {baseBackupCommand, uploadManifest} from './command.js'
import {BatchFile} from './batch-file.js'
import {EarlyWriteback} from './early-writeback.js'
import {ArchiveExtractor} from './extract.js'
import {mapTablespace, validateBackupOptions, type BackupOptions} from './options.js'
import {BaseBackupStream, type BackupMessage} from './stream.js'
import {ChainWriter} from './stream-writer.js'
import {syncFiles, syncTree} from './sync.js'
import {TarArchiveOutput, type ExtraMember, type TarOutputOptions} from './tar-output.js'
import {TargetDirs} from './target-dirs.js'
import {WalDirectorySink, WalTarSink} from './wal-sinks.js'

/**
 * `repl basebackup`: a copy of a running cluster over the replication protocol, as
 * pg_basebackup makes it. One connection runs BASE_BACKUP and its archives are unpacked
 * (plain) or written as tar files as they arrive; with -X stream a second connection streams
 * the WAL written meanwhile into pg_wal/ or pg_wal.tar through the shared WalStreamer, and
 * stops at the backup's end position. On any failure or interrupt everything this run created
 * is removed (unless told not to) and a slot it created is dropped.
 */

export interface BackupConnector {
  resolved: ResolvedConnection
  connect(replication: 'true'): Promise<Connected>
}

export type BackupEvent =
  /** A wait begins (checkpoint, WAL end, sync). */
  | {type: 'waiting'; text: string}
  /** That wait is over. */
  | {type: 'waited'; text: string}
  /** A milestone, as pg_basebackup -v reports them. */
  | {type: 'message'; text: string}
  | {type: 'progress'; done: number; total?: number; label: string; final?: boolean}
  | {type: 'warning'; text: string}
  /** What a failed run removed or left behind: always worth telling. */
  | {type: 'notice'; text: string}

export interface BackupHooks {
  signal?: AbortSignal
  onEvent?: (event: BackupEvent) => void
  /** Where `-D -` writes (process.stdout). */
  stdout?: Writable
}

export interface BackupSummary {
  target: string
  format: 'plain' | 'tar'
  walMethod: 'stream' | 'fetch' | 'none'
  serverMajor: number
  systemId: string
  startLsn: string
  endLsn: string
  timeline: number
  /** Archive bytes received from the server (compressed size with server-side compression). */
  bytes: number
  /** WAL bytes streamed with -X stream. */
  walBytes: number
  /** Plain: regular files written (WAL segments included); tar: archive files written. */
  files: number
  tablespaces: number
  manifest: boolean
  slot: string | null
  temporarySlot: boolean
  compression: string | null
  incremental: boolean
  durationMs: number
}

interface ArchiveWriter {
  write(chunk: Buffer): Promise<void>
  end(extra?: ExtraMember[]): Promise<void>
  destroy(err?: Error): void
}

const PROGRESS_EVERY_MS = 200
const DROP_SLOT_TIMEOUT_MS = 10_000

function withTimeout<T>(promise: Promise<T>, ms: number, onTimeout: () => void): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  return Promise.race([
    promise,
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => {
        onTimeout()
        reject(new ReplError('TIMEOUT', `timed out after ${ms / 1000} s`))
      }, ms)
    }),
  ]).finally(() => clearTimeout(timer))
}

export async function takeBaseBackup(connector: BackupConnector, options: BackupOptions, hooks: BackupHooks = {}): Promise<BackupSummary> {
  validateBackupOptions(options)
  const run = new BackupRun(connector, options, hooks)
  return run.execute()
}

class BackupRun {
  private readonly started = Date.now()
  private readonly dirs = new TargetDirs()
  private readonly connections: PgConnection[] = []
  private readonly toStdout: boolean
  private readonly plain: boolean
  private writer?: ArchiveWriter
  private deferredBase?: ArchiveWriter
  private manifestChunks?: Buffer[]
  private walTask?: Promise<unknown>
  private walError?: unknown
  private walSink?: WalDirectorySink | WalTarSink
  private walBytes = 0
  private createdSlot?: string
  private files = 0
  private readonly outputFiles: string[] = []
  private received = 0
  private serverDone = 0
  private total?: number
  private label = ''
  private lastProgress = 0
  private progressCheckAt = 0

  /** Files go to disk while the backup runs, so that the final fsync is short (unless --no-sync). */
  private readonly writeback: EarlyWriteback | undefined

  constructor(private readonly connector: BackupConnector, private readonly o: BackupOptions, private readonly hooks: BackupHooks) {
    this.toStdout = o.target === '-'
    this.plain = o.format === 'plain'
    this.writeback = o.sync && !this.toStdout ? new EarlyWriteback() : undefined
  }

  private emit(event: BackupEvent): void {
    this.hooks.onEvent?.(event)
  }

  async execute(): Promise<BackupSummary> {
    const {signal} = this.hooks
    const onAbort = () => {
      const err = new ReplError('INTERRUPTED', 'Base backup interrupted')
      for (const c of this.connections) c.destroy(err)
      this.writer?.destroy(err)
    }
    signal?.addEventListener('abort', onAbort, {once: true})
    try {
      if (signal?.aborted) throw new ReplError('INTERRUPTED', 'Base backup interrupted')
      return await this.backup()
    } catch (err) {
      throw await this.fail(err)
    } finally {
      signal?.removeEventListener('abort', onAbort)
    }
  }

  private async backup(): Promise<BackupSummary> {
    const o = this.o
    // Fail on unusable directories before touching the server.
    if (!this.toStdout) await TargetDirs.checkUsable(o.target, this.plain ? 'data directory' : 'directory')
    if (o.waldir) await TargetDirs.checkUsable(o.waldir, 'WAL directory')
    if (o.incrementalManifest) {
      await access(o.incrementalManifest, fsConstants.R_OK).catch((err) => {
        throw fromSystemError(err, `Cannot read backup manifest "${o.incrementalManifest}"`)
      })
    }

    const {connection: conn, target: server} = await this.connect()
    this.connections.push(conn)
    const caps = capabilitiesOf(conn)
    const identity = await identifySystem(conn)
    const segmentSize = await walSegmentSize(conn)
    const dirMode = Number.parseInt(await showSetting(conn, 'data_directory_mode'), 8) === 0o750 ? 0o750 : 0o700
    const fileMode = dirMode === 0o750 ? 0o640 : 0o600
    const serverCompression = o.compression?.location === 'server' ? o.compression.spec : undefined
    const clientCompression = o.compression?.location === 'client' ? o.compression.spec : undefined
    const command = baseBackupCommand(caps, {
      label: o.label,
      progress: o.estimateSize,
      fastCheckpoint: o.fastCheckpoint,
      includeWal: o.walMethod === 'fetch',
      waitForArchive: o.walMethod === 'none',
      maxRateKb: o.maxRateKb,
      tablespaceMap: !this.plain,
      verifyChecksums: o.verifyChecksums,
      manifest: o.manifest ? (o.manifestForceEncode ? 'force-encode' : 'yes') : undefined,
      manifestChecksums: o.manifestChecksums,
      serverCompression,
      incremental: Boolean(o.incrementalManifest),
    })

    if (o.createSlot) {
      await createReplicationSlot(conn, o.slot!, {reserveWal: true})
      this.createdSlot = o.slot
      this.emit({type: 'message', text: `created replication slot "${o.slot}"`})
    } else if (o.slot && caps.readReplicationSlot) {
      const info = await readReplicationSlot(conn, o.slot)
      if (!info) throw new ReplError('NOT_FOUND', `Replication slot "${o.slot}" does not exist`, {hint: 'Create it with repl create-slot, or add --create-slot.'})
      if (info.slotType !== 'physical') throw new ReplError('INVALID_ARGUMENT', `Replication slot "${o.slot}" is ${info.slotType}, not physical`)
    }

    if (!this.toStdout) await this.dirs.prepare(o.target, dirMode, this.plain ? 'data directory' : 'directory')
    if (this.plain && o.waldir) {
      await this.dirs.prepare(o.waldir, dirMode, 'WAL directory')
      await symlink(o.waldir, join(o.target, 'pg_wal')).catch((err) => {
        throw fromSystemError(err, `Cannot create symbolic link "${join(o.target, 'pg_wal')}"`)
      })
    }
    if (this.plain && o.walMethod === 'stream') {
      // WAL may arrive before the base archive's pg_wal entry does.
      await mkdir(join(o.target, 'pg_wal', 'archive_status'), {recursive: true, mode: dirMode})
    }

    if (o.incrementalManifest) {
      this.emit({type: 'message', text: `uploading manifest "${o.incrementalManifest}"`})
      await uploadManifest(conn, o.incrementalManifest)
    }

    this.emit({type: 'waiting', text: `Waiting for ${o.fastCheckpoint ? 'a fast' : 'a spread'} checkpoint on the server`})
    this.emit({type: 'message', text: 'initiating base backup, waiting for checkpoint to complete'})
    const bb = await BaseBackupStream.start(conn, caps, command)
    this.emit({type: 'waited', text: 'Checkpoint completed'})
    this.emit({type: 'message', text: `write-ahead log start point: ${formatLsn(bb.startLsn)} on timeline ${bb.timeline}`})

    if (this.toStdout && bb.tablespaces.length > 1) {
      throw new ReplError('INVALID_ARGUMENT', `Can only write a single tablespace to standard output; the database has ${bb.tablespaces.length}`, {hint: 'Write to a directory instead.'})
    }
    if (this.plain) {
      for (const ts of bb.tablespaces) {
        if (ts.location !== null) await this.dirs.prepare(mapTablespace(ts.location, o.tablespaceMappings), dirMode, 'tablespace directory')
      }
    }
    if (o.estimateSize && bb.tablespaces.every((t) => t.sizeBytes !== undefined)) {
      this.total = bb.tablespaces.reduce((sum, t) => sum + (t.sizeBytes ?? 0), 0)
    }

    let slot = o.slot ?? null
    let temporarySlot = false
    if (o.walMethod === 'stream') {
      const started = await this.startWalStreaming(identity.systemId, bb, segmentSize, fileMode, dirMode, clientCompression)
      slot = started.slot
      temporarySlot = started.temporary
    }

    // The archives, then the manifest.
    const recoveryConf = o.writeRecoveryConf ? {primaryConninfo: standbyConninfo(this.connector.resolved, server), slot: o.slot} : undefined
    for (;;) {
      const m = await bb.next()
      if (!m) break
      await this.handle(m, {fileMode, dirMode, clientCompression, addTrailer: !caps.baseBackupOptionList, recoveryConf})
    }
    await this.finishWriter()
    if (this.deferredBase) {
      const base = this.deferredBase
      this.deferredBase = undefined
      await base.end(this.manifestChunks ? [{name: 'backup_manifest', content: Buffer.concat(this.manifestChunks)}] : [])
    }
    this.progress(true)
    const endLsn = bb.endLsn!
    this.emit({type: 'message', text: `write-ahead log end point: ${formatLsn(endLsn)}`})

    if (this.walTask) {
      this.emit({type: 'waiting', text: `Waiting for WAL streaming to reach ${formatLsn(endLsn)}`})
      this.emit({type: 'message', text: 'waiting for background process to finish streaming ...'})
      this.walStreamer!.stopAt(endLsn)
      await this.walTask
      this.emit({type: 'waited', text: `WAL streamed up to ${formatLsn(endLsn)}`})
    }
    for (const c of this.connections) await c.close()
    this.connections.length = 0
    // Past this point nothing reads from the server, so an interrupt must be looked for.
    this.checkInterrupted()

    if (this.plain && recoveryConf) await writeStandbyConfig(o.target, recoveryConf)

    if (o.sync && !this.toStdout) {
      this.emit({type: 'waiting', text: 'Syncing data to disk'})
      this.emit({type: 'message', text: 'syncing data to disk ...'})
      await this.writeback?.finish()
      if (this.plain) await syncTree(o.target)
      else await syncFiles(this.outputFiles, [o.target])
      this.emit({type: 'waited', text: 'Data synced to disk'})
      this.checkInterrupted()
    }
    if (o.manifest && !this.toStdout) {
      this.emit({type: 'message', text: 'renaming backup_manifest.tmp to backup_manifest'})
      await rename(join(o.target, 'backup_manifest.tmp'), join(o.target, 'backup_manifest')).catch((err) => {
        throw fromSystemError(err, `Cannot rename "${join(o.target, 'backup_manifest.tmp')}"`)
      })
      if (o.sync) await syncFiles([], [o.target])
    }
    this.emit({type: 'message', text: 'base backup completed'})

    return {
      target: o.target,
      format: o.format,
      walMethod: o.walMethod,
      serverMajor: caps.major,
      systemId: identity.systemId,
      startLsn: formatLsn(bb.startLsn),
      endLsn: formatLsn(endLsn),
      timeline: bb.timeline,
      bytes: this.received,
      walBytes: this.walBytes,
      files: this.plain ? this.files + (this.walSink?.segments ?? 0) : this.outputFiles.length,
      tablespaces: bb.tablespaces.length,
      manifest: o.manifest,
      slot,
      temporarySlot,
      compression: o.compression?.spec ? `${o.compression.location}-${describeCompression(o.compression.spec)}` : null,
      incremental: Boolean(o.incrementalManifest),
      durationMs: Date.now() - this.started,
    }
  }

  private walStreamer?: WalStreamer

  /**
   * Connect unless interrupted. The signal is honoured here rather than by the connector, so
   * that cleanup after an interrupt can still connect (to drop a slot it created).
   */
  private connect(): Promise<Connected> {
    const signal = this.hooks.signal
    const interrupted = () => new ReplError('INTERRUPTED', 'Base backup interrupted')
    if (signal?.aborted) return Promise.reject(interrupted())
    const attempt = this.connector.connect('true')
    if (!signal) return attempt
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        reject(interrupted())
        attempt.then((c) => c.connection.destroy(), () => {})
      }
      signal.addEventListener('abort', onAbort, {once: true})
      attempt.then(
        (c) => {
          signal.removeEventListener('abort', onAbort)
          if (signal.aborted) c.connection.destroy()
          else resolve(c)
        },
        (err) => {
          signal.removeEventListener('abort', onAbort)
          reject(err)
        },
      )
    })
  }

  private async startWalStreaming(
    systemId: string,
    bb: BaseBackupStream,
    segmentSize: number,
    fileMode: number,
    dirMode: number,
    clientCompression: CompressionSpec | undefined,
  ): Promise<{slot: string | null; temporary: boolean}> {
    const o = this.o
    this.emit({type: 'message', text: 'starting background WAL receiver'})
    const {connection: wal} = await this.connect()
    this.connections.push(wal)
    const walIdentity = await identifySystem(wal)
    if (walIdentity.systemId !== systemId) {
      throw new ReplError('INVALID_DATA', `The WAL streaming connection reached a different server (system identifier ${walIdentity.systemId}, expected ${systemId})`)
    }
    let slot = o.slot ?? null
    let temporary = false
    if (!slot && !o.noSlot) {
      // A temporary slot keeps the server from recycling WAL the backup still needs; it goes away with the connection.
      slot = `repl_basebackup_${wal.backendPid}`
      await createReplicationSlot(wal, slot, {temporary: true, reserveWal: true})
      temporary = true
      this.emit({type: 'message', text: `created temporary replication slot "${slot}"`})
    }
    // pg_basebackup compresses pg_wal.tar only with gzip; other methods leave it plain.
    const walCompression = clientCompression?.algorithm === 'gzip' ? clientCompression : undefined
    if (this.plain) {
      this.walSink = new WalDirectorySink(join(o.target, 'pg_wal'), segmentSize, fileMode, dirMode)
    } else {
      const path = join(o.target, `pg_wal.tar${walCompression ? FILE_SUFFIX.gzip : ''}`)
      this.walSink = new WalTarSink(path, segmentSize, fileMode, walCompression)
      this.outputFiles.push(path)
    }
    this.walStreamer = new WalStreamer({
      connection: wal,
      sink: this.walSink,
      startLsn: bb.startLsn,
      timeline: bb.timeline,
      segmentSize,
      slot: slot ?? undefined,
      statusIntervalSeconds: o.statusIntervalSeconds,
      onEvent: (e) => {
        if (e.type === 'progress') this.walBytes = e.receivedBytes
      },
    })
    const task = this.walStreamer.run()
    this.walTask = task
    task.catch((err) => {
      // Stop the backup at once: the WAL it needs is no longer being received.
      this.walError = err
      const main = this.connections[0]
      main?.destroy(err instanceof Error ? err : new Error(String(err)))
      this.writer?.destroy(err as Error)
    })
    return {slot, temporary}
  }

  private async handle(
    m: BackupMessage,
    ctx: {
      fileMode: number
      dirMode: number
      clientCompression?: CompressionSpec
      addTrailer: boolean
      recoveryConf?: {primaryConninfo: string; slot?: string}
    },
  ): Promise<void> {
    switch (m.kind) {
      case 'data':
        if (!this.writer) throw new ReplError('PROTOCOL_ERROR', 'Server sent backup data before naming an archive')
        this.received += m.data.length
        await this.writer.write(m.data)
        if (this.received >= this.progressCheckAt) {
          this.progressCheckAt = this.received + 1024 * 1024
          this.progress(false)
        }
        return
      case 'progress':
        this.serverDone = m.bytesDone
        this.progress(false)
        return
      case 'archive':
        await this.finishWriter()
        this.writer = await this.openArchive(m.name, m.tablespace.location, ctx)
        this.emit({type: 'message', text: `receiving ${m.name}${m.tablespace.location ? ` (tablespace ${m.tablespace.location})` : ''}`})
        return
      case 'manifest':
        await this.finishWriter()
        if (!this.o.manifest) throw new ReplError('PROTOCOL_ERROR', 'Server sent a backup manifest that was not asked for')
        this.label = 'backup_manifest'
        if (this.toStdout) {
          const chunks: Buffer[] = []
          this.manifestChunks = chunks
          this.writer = {
            write: async (chunk) => void chunks.push(Buffer.from(chunk)),
            end: async () => {},
            destroy: () => {},
          }
        } else {
          const file = await BatchFile.create(join(this.o.target, 'backup_manifest.tmp'), ctx.fileMode, this.writeback)
          this.writer = {write: (c) => file.write(c), end: () => file.close(), destroy: () => file.abandon()}
        }
    }
  }

  private async openArchive(
    name: string,
    location: string | null,
    ctx: {fileMode: number; dirMode: number; clientCompression?: CompressionSpec; addTrailer: boolean; recoveryConf?: {primaryConninfo: string; slot?: string}},
  ): Promise<ArchiveWriter> {
    const o = this.o
    const isBase = location === null
    const serverAlgorithm = algorithmOfFileName(name)
    if (this.plain) {
      const dir = isBase ? o.target : mapTablespace(location, o.tablespaceMappings)
      this.label = isBase ? 'base' : location
      const extractor = new ArchiveExtractor({
        dir,
        archive: name,
        fileMode: ctx.fileMode,
        dirMode: ctx.dirMode,
        mapLink: isBase ? (t) => mapTablespace(t, o.tablespaceMappings) : undefined,
        onFile: () => this.files++,
        writeback: this.writeback,
      })
      if (!serverAlgorithm) return {write: (c) => extractor.write(c), end: () => extractor.end(), destroy: () => extractor.destroy()}
      const chain = new ChainWriter([decompressStream(serverAlgorithm), extractor.writable()])
      return {write: (c) => chain.write(c), end: () => chain.end(), destroy: (e) => chain.destroy(e)}
    }
    const fileName = name + (ctx.clientCompression ? FILE_SUFFIX[ctx.clientCompression.algorithm] : '')
    this.label = fileName
    const injectManifest = this.toStdout && o.manifest
    const rewrite = isBase && (ctx.recoveryConf || injectManifest)
      ? {recovery: ctx.recoveryConf ? {autoConf: (text: string) => standbyAutoConfText(text, ctx.recoveryConf!), fileMode: ctx.fileMode} : undefined}
      : undefined
    let destination: TarOutputOptions['destination']
    if (this.toStdout) {
      destination = {stream: this.hooks.stdout ?? process.stdout}
    } else {
      const path = join(o.target, fileName)
      destination = {path, fileMode: ctx.fileMode, writeback: this.writeback}
      this.outputFiles.push(path)
    }
    const output = await TarArchiveOutput.open({
      destination,
      archive: fileName,
      serverCompression: serverAlgorithm,
      clientCompression: ctx.clientCompression,
      addTrailer: ctx.addTrailer,
      rewrite,
    })
    const writer: ArchiveWriter = {write: (c) => output.write(c), end: (extra) => output.end(extra), destroy: (e) => output.destroy(e)}
    // To stdout, the manifest arrives after the base archive and must go inside it.
    if (injectManifest) return {...writer, end: async () => void (this.deferredBase = writer)}
    return writer
  }

  private checkInterrupted(): void {
    if (this.hooks.signal?.aborted) throw new ReplError('INTERRUPTED', 'Base backup interrupted')
  }

  private async finishWriter(): Promise<void> {
    const w = this.writer
    this.writer = undefined
    await w?.end()
  }

  private progress(final: boolean): void {
    const now = Date.now()
    if (!final && now - this.lastProgress < PROGRESS_EVERY_MS) return
    this.lastProgress = now
    const compressed = this.o.compression?.location === 'server' && this.o.compression.spec !== undefined
    const done = Math.max(this.serverDone, compressed ? 0 : this.received)
    // The server's estimate is only that: at the end, what was done is the total.
    const total = final && this.total !== undefined ? Math.max(done, this.total) : this.total
    this.emit({type: 'progress', done: final ? (total ?? done) : done, total, label: this.label, final})
  }

  /** Undo what this run did; returns the error to report. */
  private async fail(err: unknown): Promise<unknown> {
    let failure = this.walError ?? err
    if (this.hooks.signal?.aborted) failure = new ReplError('INTERRUPTED', 'Base backup interrupted', {cause: err})
    this.writer?.destroy()
    this.deferredBase?.destroy()
    this.writeback?.abandon()
    for (const c of this.connections) c.destroy()
    await this.walTask?.catch(() => {})
    if (this.createdSlot) {
      try {
        const {connection} = await this.connector.connect('true')
        try {
          // The streaming connection just closed; its walsender may hold the slot a moment longer.
          await withTimeout(dropReplicationSlot(connection, this.createdSlot, {wait: true}), DROP_SLOT_TIMEOUT_MS, () => connection.destroy())
        } finally {
          await connection.close()
        }
        this.emit({type: 'notice', text: `dropped replication slot "${this.createdSlot}" created by this run`})
      } catch (dropErr) {
        this.emit({type: 'warning', text: `could not drop replication slot "${this.createdSlot}" created by this run: ${(dropErr as Error).message}`})
      }
    }
    if (this.o.clean) {
      for (const removed of await this.dirs.cleanup()) this.emit({type: 'notice', text: `removed ${removed}`})
    } else if (!this.toStdout) {
      this.emit({type: 'warning', text: `"${this.o.target}" not removed at user's request (--no-clean)`})
    }
    return failure
  }
}
