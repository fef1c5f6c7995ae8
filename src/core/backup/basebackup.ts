import {access, constants as fsConstants, mkdir, rename, symlink} from 'node:fs/promises'
import {join} from 'node:path'
import type {Writable} from 'node:stream'

import {fromSystemError, ReplError} from '../errors.js'
import type {OnProgress, ProgressEvent} from '../events.js'
import {describeCompression, FILE_SUFFIX, type CompressionSpec} from '../compress/index.js'
import {standbyConninfo} from '../conninfo/resolve.js'
import type {Connected} from '../conninfo/connect.js'
import type {PgConnection} from '../pg/connection.js'
import {capabilitiesOf, createReplicationSlot, identifySystem, readReplicationSlot, showSetting, walSegmentSize} from '../replication/commands.js'
import {WalStreamer} from '../walstream/stream-wal.js'
import {WalDirectorySink} from '../walstream/wal-directory-sink.js'
import {WalTarSink} from '../walstream/wal-tar-sink.js'
import {writeStandbyConfig} from '../server/standby-signal.js'
import {formatLsn} from '../wal/lsn.js'
import {openArchiveWriter, openManifestWriter, type ArchiveContext, type ArchiveWriter} from './archive-writer.js'
import {connectUnlessInterrupted, dropCreatedSlot, openWalConnection, type BackupConnector} from './backup-connections.js'
import {baseBackupCommand, serverCompressionRequest, uploadManifest} from './command.js'
import {classifyFailure} from './failure.js'
import {EarlyWriteback} from './early-writeback.js'
import {compressionLocation, mapTablespace, validateBackupOptions, type BackupOptions} from './options.js'
import {BaseBackupStream, type BackupMessage} from './stream.js'
import {syncFiles, syncTree} from './sync.js'
import {TargetDirs} from './target-dirs.js'

/**
 * `repl basebackup`: a copy of a running cluster over the replication protocol, as
 * pg_basebackup makes it. One connection runs BASE_BACKUP and its archives are unpacked
 * (plain) or written as tar files as they arrive; with -X stream a second connection streams
 * the WAL written meanwhile into pg_wal/ or pg_wal.tar through the shared WalStreamer, and
 * stops at the backup's end position. On any failure or interrupt everything this run created
 * is removed (unless told not to) and a slot it created is dropped.
 */

export type {BackupConnector}

export interface BackupHooks {
  signal?: AbortSignal
  /**
   * One event a step: waits are phases whose `detail` is pg_basebackup -v's line for them,
   * other milestones verbose notes; what a failed run removed or left behind is a plain note
   * (always worth telling).
   */
  onProgress?: OnProgress
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

const PROGRESS_EVERY_MS = 200

export async function takeBaseBackup(connector: BackupConnector, options: BackupOptions, hooks: BackupHooks = {}): Promise<BackupSummary> {
  validateBackupOptions(options)
  const compression = options.compression && {...options.compression, location: compressionLocation(options)}
  const run = new BackupRun(connector, {...options, compression}, hooks)
  return run.execute()
}

class BackupRun {
  private readonly started = Date.now()
  private readonly dirs = new TargetDirs()
  private readonly connections: PgConnection[] = []
  private readonly toStdout: boolean
  private readonly plain: boolean
  /** The server writes the backup (-t server:/path, blackhole): nothing is written here. */
  private readonly onServer: boolean
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

  constructor(private readonly connector: BackupConnector, private readonly options: BackupOptions, private readonly hooks: BackupHooks) {
    this.toStdout = this.options.target === '-'
    this.plain = this.options.format === 'plain'
    this.onServer = this.options.backupTarget !== undefined
    this.writeback = this.options.sync && !this.toStdout && !this.onServer ? new EarlyWriteback() : undefined
  }

  private emit(event: ProgressEvent): void {
    this.hooks.onProgress?.(event)
  }

  /** A milestone as pg_basebackup -v reports it. */
  private milestone(text: string): void {
    this.emit({type: 'note', text, verbose: true})
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
        // Fail on unusable directories before touching the server.
    const local = !this.toStdout && !this.onServer
    if (local) await TargetDirs.checkUsable(this.options.target, this.plain ? 'data directory' : 'directory')
    if (this.options.waldir) await TargetDirs.checkUsable(this.options.waldir, 'WAL directory')
    if (this.options.incrementalManifest) {
      await access(this.options.incrementalManifest, fsConstants.R_OK).catch((err) => {
        throw fromSystemError(err, `Cannot read backup manifest "${this.options.incrementalManifest}"`)
      })
    }

    const {connection: conn, target: server} = await this.connect()
    this.connections.push(conn)
    const caps = capabilitiesOf(conn)
    const identity = await identifySystem(conn)
    const segmentSize = await walSegmentSize(conn)
    const dirMode = Number.parseInt(await showSetting(conn, 'data_directory_mode'), 8) === 0o750 ? 0o750 : 0o700
    const fileMode = dirMode === 0o750 ? 0o640 : 0o600
    const serverCompression = this.options.compression?.location === 'server' ? serverCompressionRequest(this.options.compression) : undefined
    const clientCompression = this.options.compression?.location === 'client' ? this.options.compression.spec : undefined
    const command = baseBackupCommand(caps, {
      label: this.options.label,
      progress: this.options.estimateSize,
      fastCheckpoint: this.options.fastCheckpoint,
      includeWal: this.options.walMethod === 'fetch',
      waitForArchive: this.options.walMethod === 'none',
      maxRateKb: this.options.maxRateKb,
      tablespaceMap: !this.plain,
      verifyChecksums: this.options.verifyChecksums,
      manifest: this.options.manifest ? (this.options.manifestForceEncode ? 'force-encode' : 'yes') : undefined,
      manifestChecksums: this.options.manifestChecksums,
      serverCompression,
      target: this.options.backupTarget,
      incremental: Boolean(this.options.incrementalManifest),
    })

    if (this.options.createSlot) {
      await createReplicationSlot(conn, this.options.slot!, {reserveWal: true})
      this.createdSlot = this.options.slot
      this.milestone(`created replication slot "${this.options.slot}"`)
    } else if (this.options.slot && caps.readReplicationSlot) {
      const info = await readReplicationSlot(conn, this.options.slot)
      if (!info) throw new ReplError('NOT_FOUND', `Replication slot "${this.options.slot}" does not exist`, {hint: 'Create it with repl create-slot, or add --create-slot.'})
      if (info.slotType !== 'physical') throw new ReplError('INVALID_ARGUMENT', `Replication slot "${this.options.slot}" is ${info.slotType}, not physical`)
    }

    if (local) await this.dirs.prepare(this.options.target, dirMode, this.plain ? 'data directory' : 'directory')
    if (this.plain && this.options.waldir) {
      await this.dirs.prepare(this.options.waldir, dirMode, 'WAL directory')
      await symlink(this.options.waldir, join(this.options.target, 'pg_wal')).catch((err) => {
        throw fromSystemError(err, `Cannot create symbolic link "${join(this.options.target, 'pg_wal')}"`)
      })
    }
    if (this.plain && this.options.walMethod === 'stream') {
      // WAL may arrive before the base archive's pg_wal entry does.
      await mkdir(join(this.options.target, 'pg_wal', 'archive_status'), {recursive: true, mode: dirMode})
    }

    if (this.options.incrementalManifest) {
      this.milestone(`uploading manifest "${this.options.incrementalManifest}"`)
      await uploadManifest(conn, this.options.incrementalManifest)
    }

    this.emit({
      type: 'phase',
      text: this.options.fastCheckpoint ? 'Waiting for a fast checkpoint on the server' : "Waiting for the server's spread checkpoint (--checkpoint=fast skips the wait)",
      detail: 'initiating base backup, waiting for checkpoint to complete',
    })
    const bb = await BaseBackupStream.start(conn, caps, command)
    this.emit({type: 'phase-done', text: 'Checkpoint completed', detail: `write-ahead log start point: ${formatLsn(bb.startLsn)} on timeline ${bb.timeline}`})

    if (this.toStdout && bb.tablespaces.length > 1) {
      throw new ReplError('INVALID_ARGUMENT', `Can only write a single tablespace to standard output; the database has ${bb.tablespaces.length}`, {hint: 'Write to a directory instead.'})
    }
    if (this.plain && !this.onServer) {
      for (const ts of bb.tablespaces) {
        if (ts.location !== null) await this.dirs.prepare(mapTablespace(ts.location, this.options.tablespaceMappings), dirMode, 'tablespace directory')
      }
    }
    if (this.options.estimateSize && bb.tablespaces.every((t) => t.sizeBytes !== undefined)) {
      this.total = bb.tablespaces.reduce((sum, t) => sum + (t.sizeBytes ?? 0), 0)
    }

    let slot = this.options.slot ?? null
    let temporarySlot = false
    if (this.options.walMethod === 'stream') {
      const started = await this.startWalStreaming(identity.systemId, bb, segmentSize, fileMode, dirMode, clientCompression)
      slot = started.slot
      temporarySlot = started.temporary
    }

    // The archives, then the manifest.
    const recoveryConf = this.options.writeRecoveryConf ? {primaryConninfo: standbyConninfo(this.connector.resolved, server), slot: this.options.slot} : undefined
    const archiveCtx: ArchiveContext = {
      options: this.options,
      plain: this.plain,
      toStdout: this.toStdout,
      stdout: this.hooks.stdout,
      fileMode,
      dirMode,
      clientCompression,
      addTrailer: !caps.baseBackupOptionList,
      recoveryConf,
      writeback: this.writeback,
      onFile: () => this.files++,
      onOutputFile: (path) => this.outputFiles.push(path),
      deferBase: (writer) => (this.deferredBase = writer),
    }
    for (;;) {
      const m = await bb.next()
      if (!m) break
      await this.handle(m, archiveCtx)
    }
    await this.finishWriter()
    if (this.deferredBase) {
      const base = this.deferredBase
      this.deferredBase = undefined
      await base.end(this.manifestChunks ? [{name: 'backup_manifest', content: Buffer.concat(this.manifestChunks)}] : [])
    }
    this.reportBytes(true)
    const endLsn = bb.endLsn!
    this.milestone(`write-ahead log end point: ${formatLsn(endLsn)}`)

    if (this.walTask) {
      this.emit({type: 'phase', text: `Waiting for WAL streaming to reach ${formatLsn(endLsn)}`, detail: 'waiting for background process to finish streaming ...'})
      this.walStreamer!.stopAt(endLsn)
      await this.walTask
      this.emit({type: 'phase-done', text: `WAL streamed up to ${formatLsn(endLsn)}`})
    }
    for (const c of this.connections) await c.close()
    this.connections.length = 0
    // Past this point nothing reads from the server, so an interrupt must be looked for.
    this.checkInterrupted()

    if (this.plain && recoveryConf) await writeStandbyConfig(this.options.target, recoveryConf)

    if (this.options.sync && local) {
      this.emit({type: 'phase', text: 'Syncing data to disk', detail: 'syncing data to disk ...'})
      await this.writeback?.finish()
      if (this.plain) await syncTree(this.options.target)
      else await syncFiles(this.outputFiles, [this.options.target])
      this.emit({type: 'phase-done', text: 'Data synced to disk'})
      this.checkInterrupted()
    }
    if (this.options.manifest && local) {
      this.milestone('renaming backup_manifest.tmp to backup_manifest')
      await rename(join(this.options.target, 'backup_manifest.tmp'), join(this.options.target, 'backup_manifest')).catch((err) => {
        throw fromSystemError(err, `Cannot rename "${join(this.options.target, 'backup_manifest.tmp')}"`)
      })
      if (this.options.sync) await syncFiles([], [this.options.target])
    }
    this.milestone('base backup completed')

    return {
      target: this.options.backupTarget ? [this.options.backupTarget.name, this.options.backupTarget.detail].filter((p) => p !== undefined).join(':') : this.options.target,
      format: this.options.format,
      walMethod: this.options.walMethod,
      serverMajor: caps.major,
      systemId: identity.systemId,
      startLsn: formatLsn(bb.startLsn),
      endLsn: formatLsn(endLsn),
      timeline: bb.timeline,
      bytes: this.received,
      walBytes: this.walBytes,
      files: this.plain ? this.files + (this.walSink?.segments ?? 0) : this.outputFiles.length,
      tablespaces: bb.tablespaces.length,
      manifest: this.options.manifest,
      slot,
      temporarySlot,
      compression: this.options.compression?.spec ? `${this.options.compression.location}-${describeCompression(this.options.compression.spec)}` : null,
      incremental: Boolean(this.options.incrementalManifest),
      durationMs: Date.now() - this.started,
    }
  }

  private walStreamer?: WalStreamer

  private connect(): Promise<Connected> {
    return connectUnlessInterrupted(this.connector, this.hooks.signal)
  }

  private async startWalStreaming(
    systemId: string,
    bb: BaseBackupStream,
    segmentSize: number,
    fileMode: number,
    dirMode: number,
    clientCompression: CompressionSpec | undefined,
  ): Promise<{slot: string | null; temporary: boolean}> {
        this.milestone('starting background WAL receiver')
    const {connection: wal, slot, temporary} = await openWalConnection(() => this.connect(), (c) => this.connections.push(c), systemId, this.options)
    if (temporary) this.milestone(`created temporary replication slot "${slot}"`)
    // pg_basebackup compresses pg_wal.tar only with gzip; other methods leave it plain.
    const walCompression = clientCompression?.algorithm === 'gzip' ? clientCompression : undefined
    if (this.plain) {
      // Not synced here: the whole backup is synced once at its end, as pg_basebackup does.
      this.walSink = new WalDirectorySink({directory: join(this.options.target, 'pg_wal'), segmentSize, partialSuffix: false, padding: 'tail', sync: false, markDone: true, fileMode, dirMode})
    } else {
      const path = join(this.options.target, `pg_wal.tar${walCompression ? FILE_SUFFIX.gzip : ''}`)
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
      statusIntervalSeconds: this.options.statusIntervalSeconds,
      onStreamEvent: (e) => {
        if (e.type === 'position') this.walBytes = e.receivedBytes
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

  private async handle(m: BackupMessage, ctx: ArchiveContext): Promise<void> {
    // A server-side target names its archives and manifest but sends none of their bytes.
    if (this.onServer && m.kind !== 'progress') return
    switch (m.kind) {
      case 'data':
        if (!this.writer) throw new ReplError('PROTOCOL_ERROR', 'Server sent backup data before naming an archive')
        this.received += m.data.length
        await this.writer.write(m.data)
        if (this.received >= this.progressCheckAt) {
          this.progressCheckAt = this.received + 1024 * 1024
          this.reportBytes(false)
        }
        return
      case 'progress':
        this.serverDone = m.bytesDone
        this.reportBytes(false)
        return
      case 'archive':
        await this.finishWriter()
        ;({writer: this.writer, label: this.label} = await openArchiveWriter(m.name, m.tablespace.location, ctx))
        this.milestone(`receiving ${m.name}${m.tablespace.location ? ` (tablespace ${m.tablespace.location})` : ''}`)
        return
      case 'manifest':
        await this.finishWriter()
        if (!this.options.manifest) throw new ReplError('PROTOCOL_ERROR', 'Server sent a backup manifest that was not asked for')
        this.label = 'backup_manifest'
        ;({writer: this.writer, chunks: this.manifestChunks} = await openManifestWriter(ctx))
    }
  }

  private checkInterrupted(): void {
    if (this.hooks.signal?.aborted) throw new ReplError('INTERRUPTED', 'Base backup interrupted')
  }

  private async finishWriter(): Promise<void> {
    const w = this.writer
    this.writer = undefined
    await w?.end()
  }

  private reportBytes(final: boolean): void {
    const now = Date.now()
    if (!final && now - this.lastProgress < PROGRESS_EVERY_MS) return
    this.lastProgress = now
    const compressed = this.options.compression?.location === 'server' && this.options.compression.spec !== undefined
    const done = Math.max(this.serverDone, compressed ? 0 : this.received)
    // The server's estimate is only that: at the end, what was done is the total.
    const total = final && this.total !== undefined ? Math.max(done, this.total) : this.total
    this.emit({type: 'bytes', done: final ? (total ?? done) : done, total, label: this.label, final})
  }

  /** Undo what this run did; returns the error to report. */
  private async fail(err: unknown): Promise<unknown> {
    const {failure, keepForInspection: checksumFailure} = classifyFailure(err, {walError: this.walError, interrupted: this.hooks.signal?.aborted === true})
    this.writer?.destroy()
    this.deferredBase?.destroy()
    this.writeback?.abandon()
    for (const c of this.connections) c.destroy()
    await this.walTask?.catch(() => {})
    if (this.createdSlot) {
      try {
        await dropCreatedSlot(this.connector, this.createdSlot)
        this.emit({type: 'note', text: `dropped replication slot "${this.createdSlot}" created by this run`})
      } catch (dropErr) {
        this.emit({type: 'warning', text: `could not drop replication slot "${this.createdSlot}" created by this run: ${(dropErr as Error).message}`})
      }
    }
    if (checksumFailure && !this.toStdout) {
      this.emit({type: 'note', text: `"${this.options.target}" kept for inspection`})
    } else if (this.options.clean) {
      for (const removed of await this.dirs.cleanup()) this.emit({type: 'note', text: `removed ${removed}`})
    } else if (!this.toStdout && !this.onServer) {
      this.emit({type: 'warning', text: `"${this.options.target}" not removed at user's request (--no-clean)`})
    }
    return failure
  }
}
