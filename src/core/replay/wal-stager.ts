import {constants as fsConstants, watch, type FSWatcher} from 'node:fs'
import {chown, copyFile, mkdir, open, readdir, rename, rm, stat, truncate, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {syncPath} from '../backup/sync.js'
import {fromSystemError, ReplError} from '../errors.js'
import type {RunAsUser} from '../server/os-user.js'
import {parseWalFileName} from '../wal/lsn.js'
import {openSegmentFile} from '../wal/segment-source.js'
import {exists} from './recovery-config.js'
import type {WalFile, WalSources} from './wal-archive.js'

/**
 * Feeds restore_command (restore-command.ts): keeps the next few segments of the replay ready
 * in a staging directory — copied, or decompressed and padded to a whole segment for
 * unfinished ones — so the server's restore_command only has to rename a file. Work happens
 * here, in parallel with replay, never in the server's path. The lookahead is bounded, so the
 * staging directory never holds more than a few segments whatever the size of the replay.
 *
 * The server takes a staged file by renaming it away (that is how consumption is seen), and
 * asks for anything else with NAME.want, answered with the file or NAME.none.
 */
export interface StagerOptions {
  dir: string
  sources: WalSources
  /** Segments in the order the server will ask for them (archive files only; the backup's pg_wal serves itself). */
  plan: WalFile[]
  segmentSize: number
  /** Segments kept ready ahead of the server. */
  lookahead: number
  owner: RunAsUser | undefined
}

export class WalStager {
  private readonly staged = new Set<string>()
  private readonly wants = new Set<string>()
  private readonly planIndex = new Map<string, number>()
  private next = 0
  private watcher: FSWatcher | undefined
  private poll: NodeJS.Timeout | undefined
  private wake: (() => void) | undefined
  private running = false
  private loop: Promise<void> | undefined
  /** The server has taken the plan's last segment; `restagedLast`: it is staged once more. */
  private takenLast = false
  private restagedLast = false
  /** Set when a segment could not be staged: the replay cannot go on past it. */
  failure: ReplError | undefined
  /** Called when the server took segment `name` (it is replaying it now). */
  onConsumed: ((name: string) => void) | undefined

  constructor(private readonly options: StagerOptions) {
    this.options.plan.forEach((f, i) => this.planIndex.set(f.name, i))
  }

  /** Create the staging directory (empty, owned by the server's user) and start staging. */
  async start(): Promise<void> {
    await rm(this.options.dir, {recursive: true, force: true})
    await mkdir(this.options.dir, {recursive: true, mode: 0o700})
    if (this.options.owner) await chown(this.options.dir, this.options.owner.uid, this.options.owner.gid)
    this.running = true
    // Files appearing and disappearing (requests, the server taking a segment) matter; writes
    // into the files being staged do not, and come by the thousand.
    this.watcher = watch(this.options.dir, (event) => {
      if (event === 'rename') this.notify()
    })
    this.watcher.on('error', () => {}) // the poll below still sees everything
    // fs.watch may coalesce or drop events under load: look every so often anyway.
    this.poll = setInterval(() => this.notify(), 100)
    this.loop = this.run().catch((err: unknown) => {
      this.failure ??= fromSystemError(err, 'Cannot stage WAL for the server')
    })
  }

  /** Stop staging and remove the directory (restore_command then serves plain files itself). */
  async stop(): Promise<void> {
    this.running = false
    this.watcher?.close()
    if (this.poll) clearInterval(this.poll)
    this.notify()
    await this.loop?.catch(() => {})
    await rm(this.options.dir, {recursive: true, force: true}).catch(() => {})
  }

  /** Files the server asked for and is still waiting for (for error messages). */
  async waitingFor(): Promise<string[]> {
    const entries = await readdir(this.options.dir).catch(() => [] as string[])
    return entries.filter((e) => e.endsWith('.want')).map((e) => e.slice(0, -5))
  }

  private notify(): void {
    const wake = this.wake
    this.wake = undefined
    wake?.()
  }

  private async run(): Promise<void> {
    while (this.running) {
      await this.scan()
      const want = this.wants.values().next()
      if (!want.done) {
        await this.answer(want.value)
        this.wants.delete(want.value)
        continue
      }
      if (this.staged.size < this.options.lookahead && this.next < this.options.plan.length && !this.failure) {
        const file = this.options.plan[this.next++]!
        await this.stage(file)
        continue
      }
      // At the end of recovery the server reads the last segment again, while it waits: have it
      // staged already, rather than answer a NAME.want round trip then (a copy and an fsync).
      if (this.takenLast && !this.restagedLast && !this.failure) {
        this.restagedLast = true
        await this.stage(this.options.plan.at(-1)!)
        continue
      }
      // stop() may have run since the loop looked: never wait once stopped (nothing would wake us).
      await new Promise<void>((resolve) => {
        this.wake = resolve
        if (!this.running) resolve()
      })
    }
  }

  /** What changed in the directory: requests, and staged files the server has taken. */
  private async scan(): Promise<void> {
    let entries: string[]
    try {
      entries = await readdir(this.options.dir)
    } catch {
      return
    }
    const present = new Set(entries)
    for (const e of entries) if (e.endsWith('.want')) this.wants.add(e.slice(0, -5))
    for (const name of [...this.staged]) {
      if (present.has(name)) continue
      this.staged.delete(name)
      await this.consumed(name)
    }
  }

  /** The server moved on to `name`: staged segments before it will not be asked for. */
  private async consumed(name: string): Promise<void> {
    this.onConsumed?.(name)
    const segno = parseWalFileName(name, this.options.segmentSize)?.segno
    if (segno === undefined) return
    for (const other of [...this.staged]) {
      const s = parseWalFileName(other, this.options.segmentSize)?.segno
      if (s !== undefined && s < segno) {
        this.staged.delete(other)
        await rm(join(this.options.dir, other), {force: true})
      }
    }
    const index = this.planIndex.get(name)
    if (index !== undefined && index >= this.next) this.next = index + 1
    if (index === this.options.plan.length - 1) this.takenLast = true
  }

  /**
   * Answer NAME.want. The request file goes first: once answered, the server may ask for the
   * same file again at once (it does, at the end of WAL), and that new request must survive.
   */
  private async answer(name: string): Promise<void> {
    await rm(join(this.options.dir, `${name}.want`), {force: true})
    if (this.staged.has(name) && (await exists(join(this.options.dir, name)))) return
    this.staged.delete(name)
    const file = this.options.sources.inArchive(name)
    if (!file) {
      // The server's user may remove it: the directory is its own.
      await writeFile(join(this.options.dir, `${name}.none`), '')
      return
    }
    // After a staging failure the request stays unanswered: the replay is being stopped.
    if (this.failure) return
    await this.stage(file)
    const index = this.planIndex.get(name)
    if (index !== undefined && index >= this.next) this.next = index + 1
  }

  private async stage(file: WalFile): Promise<void> {
    const tmp = join(this.options.dir, `.tmp-${file.name}`)
    try {
      if (file.compression === 'none') {
        // A reflink where the file system has them (no data copied), else an ordinary copy.
        await copyFile(file.path, tmp, fsConstants.COPYFILE_FICLONE)
        // An unfinished segment is served whole: zeros past its data read as the end of WAL.
        if ((await stat(tmp)).size < this.options.segmentSize) await truncate(tmp, this.options.segmentSize)
      } else {
        await this.decompress(file, tmp)
      }
      // The server fsyncs every restored file before renaming it into pg_wal (durable_rename),
      // in the startup process, while replay waits: write it out here, ahead of time, so that
      // fsync finds nothing left to do.
      await syncPath(tmp)
      if (this.options.owner) await chown(tmp, this.options.owner.uid, this.options.owner.gid)
      await rename(tmp, join(this.options.dir, file.name))
      this.staged.add(file.name)
    } catch (err) {
      await rm(tmp, {force: true}).catch(() => {})
      if (!this.running) return
      this.failure ??= err instanceof ReplError ? err : fromSystemError(err, `Cannot stage WAL segment ${file.path} for the server`)
    }
  }

  private async decompress(file: WalFile, tmp: string): Promise<void> {
    const segment = await openSegmentFile(file.path, file.name, file.compression)
    const out = await open(tmp, 'w', 0o600)
    try {
      const chunk = new Uint8Array(1 << 20)
      let offset = 0
      while (offset < this.options.segmentSize) {
        const n = await segment.read(chunk, 0, offset, Math.min(chunk.length, this.options.segmentSize - offset))
        if (n === 0) break
        await out.write(chunk, 0, n)
        offset += n
      }
      if (offset < this.options.segmentSize) {
        if (!file.partial) throw new ReplError('INVALID_DATA', `WAL segment ${file.path} decompresses to ${offset} bytes, not a whole segment of ${this.options.segmentSize}`)
        await out.truncate(this.options.segmentSize)
      }
    } finally {
      await out.close()
      await segment.close()
    }
  }
}

