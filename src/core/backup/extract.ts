import {closeSync, openSync, writeSync} from 'node:fs'
import {createRequire} from 'node:module'
import {lstat, mkdir, symlink} from 'node:fs/promises'
import {dirname, join} from 'node:path'
import {Writable} from 'node:stream'

import {fromSystemError, ReplError} from '../errors.js'
import type {EarlyWriteback, FileWriteback} from './early-writeback.js'

/**
 * Unpacks one archive of a plain-format backup into a directory as it streams in. Members
 * are checked before anything is written: absolute names, `..` components, hard links, device
 * files and paths through a symbolic link unpacked from the archive are refused, so a hostile
 * or broken server cannot write outside the target. Files get PostgreSQL's modes (0600/0700,
 * or 0640/0750 with group access); tablespace links in pg_tblspc/ point where -T maps them.
 *
 * The parser is a small state machine over the bytes as they come (headers decoded by
 * tar-stream's ustar decoder), and file data is gathered in one reused 256 kB buffer and
 * written from there: a gigabyte of archive makes no garbage, and `write()`'s chunk may be
 * reused by the caller as soon as it resolves. An archive without the closing zero blocks
 * (PostgreSQL 13/14) ends cleanly at end of input.
 */
export interface ExtractOptions {
  /** Where this archive's members go. */
  dir: string
  /** Archive name, for messages. */
  archive: string
  fileMode: number
  dirMode: number
  /** Where a symbolic link from the archive should point instead (tablespace mapping). */
  mapLink?: (target: string) => string
  /** Called for each regular file written, with its size. */
  onFile?: (path: string, size: number) => void
  /** Write files out to disk as they arrive (unless --no-sync). */
  writeback?: EarlyWriteback
}

interface TarHeader {
  name: string
  type: string
  size: number
  linkname: string | null
}

interface TarHeaders {
  decode(buf: Buffer, filenameEncoding: string, allowUnknownFormat: boolean): TarHeader | null
  decodePax(buf: Buffer): Record<string, string>
  decodeLongPath(buf: Buffer, encoding: string): string
}

// tar-stream's header codec; the package exports only its stream API, so load the file itself.
const requireHere = createRequire(import.meta.url)
const headers = requireHere(join(dirname(requireHere.resolve('tar-stream')), 'headers.js')) as TarHeaders

const BLOCK = 512
// Cache-sized, like the connection's slabs: larger batches cost more in the kernel's copy than they save in calls.
const WRITE_BATCH = 256 * 1024

type State = 'header' | 'data' | 'meta' | 'padding' | 'end'

export class ArchiveExtractor {
  private readonly links = new Set<string>()
  private readonly header = Buffer.alloc(BLOCK)
  private headerFill = 0
  private state: State = 'header'
  /** Bytes of the current member's data still to come, then of its padding. */
  private remaining = 0
  private padding = 0
  private file?: {fd: number; path: string; size: number; position: number; writeback?: FileWriteback}
  private readonly batch = Buffer.allocUnsafe(WRITE_BATCH)
  private batchUsed = 0
  /** pax or GNU long-name data being gathered, applied to the next header. */
  private meta?: {type: string; chunks: Buffer[]}
  private override: {path?: string; linkpath?: string} = {}
  private failed?: Error

  constructor(private readonly options: ExtractOptions) {}

  /** Feed archive bytes; resolves once they are consumed (written or buffered here). */
  async write(chunk: Buffer): Promise<void> {
    if (this.failed) throw this.failed
    try {
      await this.consume(chunk)
    } catch (err) {
      this.failed = err as Error
      await this.closeFile()
      throw err
    }
  }

  /** End of input: a member cut short is an error; a missing end-of-archive marker is not. */
  async end(): Promise<void> {
    if (this.failed) throw this.failed
    if (this.state === 'data' || this.state === 'meta' || (this.state === 'header' && this.headerFill > 0)) {
      await this.closeFile()
      throw new ReplError('INVALID_DATA', `Archive ${this.options.archive} ended in the middle of a member`)
    }
    await this.closeFile()
  }

  destroy(): void {
    this.failed ??= new ReplError('INTERRUPTED', 'extraction stopped')
    void this.closeFile()
  }

  /** The extractor as a Writable, for the end of a stream chain (e.g. after a decompressor). */
  writable(): Writable {
    return new Writable({
      highWaterMark: WRITE_BATCH,
      write: (chunk: Buffer, _encoding, callback) => {
        this.write(chunk).then(() => callback(), callback)
      },
      final: (callback) => {
        this.end().then(() => callback(), callback)
      },
      destroy: (err, callback) => {
        if (err) this.destroy()
        callback(err)
      },
    })
  }

  private async consume(chunk: Buffer): Promise<void> {
    let pos = 0
    while (pos < chunk.length) {
      switch (this.state) {
        case 'header': {
          const n = Math.min(BLOCK - this.headerFill, chunk.length - pos)
          chunk.copy(this.header, this.headerFill, pos, pos + n)
          this.headerFill += n
          pos += n
          if (this.headerFill === BLOCK) {
            this.headerFill = 0
            await this.onHeader()
          }
          break
        }
        case 'data': {
          const n = Math.min(this.remaining, chunk.length - pos)
          await this.fileData(chunk.subarray(pos, pos + n))
          this.remaining -= n
          pos += n
          if (this.remaining === 0) {
            await this.closeFile()
            this.state = this.padding > 0 ? 'padding' : 'header'
          }
          break
        }
        case 'meta': {
          const n = Math.min(this.remaining, chunk.length - pos)
          this.meta!.chunks.push(Buffer.from(chunk.subarray(pos, pos + n)))
          this.remaining -= n
          pos += n
          if (this.remaining === 0) {
            this.applyMeta()
            this.state = this.padding > 0 ? 'padding' : 'header'
          }
          break
        }
        case 'padding': {
          const n = Math.min(this.padding, chunk.length - pos)
          this.padding -= n
          pos += n
          if (this.padding === 0) this.state = 'header'
          break
        }
        case 'end':
          return
      }
    }
  }

  private async onHeader(): Promise<void> {
    if (this.header.every((b) => b === 0)) {
      // End-of-archive marker: anything after it is not ours to read.
      this.state = 'end'
      return
    }
    let h: TarHeader | null
    try {
      h = headers.decode(this.header, 'utf-8', false)
    } catch (err) {
      throw new ReplError('INVALID_DATA', `Invalid tar header in ${this.options.archive}: ${(err as Error).message}`)
    }
    if (!h) throw new ReplError('INVALID_DATA', `Invalid tar header in ${this.options.archive}`)
    const size = h.size ?? 0
    this.padding = (BLOCK - (size % BLOCK)) % BLOCK
    if (h.type === 'pax-header' || h.type === 'gnu-long-path' || h.type === 'gnu-long-link-path') {
      this.meta = {type: h.type, chunks: []}
      this.remaining = size
      if (size > 1024 * 1024) throw this.refuse(h.name, 'extended header too large')
      this.state = size > 0 ? 'meta' : 'header'
      if (size === 0) this.applyMeta()
      return
    }
    if (h.type === 'pax-global-header') {
      // Global settings (none that matter here): skip the data.
      this.remaining = size
      this.meta = {type: h.type, chunks: []}
      this.state = size > 0 ? 'meta' : 'header'
      return
    }
    const name = this.override.path ?? h.name
    const linkname = this.override.linkpath ?? h.linkname
    this.override = {}
    const rel = this.memberPath(name)
    const path = rel === '' ? this.options.dir : join(this.options.dir, rel)
    switch (h.type) {
      case 'directory':
        await this.makeDir(path)
        this.skipData(size)
        return
      case 'file':
      case 'contiguous-file':
        await this.openFile(path, size)
        this.remaining = size
        if (size === 0) {
          await this.closeFile()
          this.state = 'header'
        } else {
          this.state = 'data'
        }
        return
      case 'symlink': {
        const target = linkname ?? ''
        const mapped = this.options.mapLink ? this.options.mapLink(target) : target
        await this.ensureParent(path)
        await symlink(mapped, path).catch((err) => {
          throw fromSystemError(err, `Cannot create symbolic link "${path}"`)
        })
        this.links.add(rel)
        this.skipData(size)
        return
      }
      default:
        throw this.refuse(name, `member type "${h.type}" is not allowed`)
    }
  }

  private skipData(size: number): void {
    this.remaining = 0
    this.padding += size
    this.state = this.padding > 0 ? 'padding' : 'header'
  }

  private applyMeta(): void {
    const meta = this.meta!
    this.meta = undefined
    const data = Buffer.concat(meta.chunks)
    if (meta.type === 'pax-header') {
      const pax = headers.decodePax(data)
      if (pax.path) this.override.path = pax.path
      if (pax.linkpath) this.override.linkpath = pax.linkpath
    } else if (meta.type === 'gnu-long-path') {
      this.override.path = headers.decodeLongPath(data, 'utf-8')
    } else if (meta.type === 'gnu-long-link-path') {
      this.override.linkpath = headers.decodeLongPath(data, 'utf-8')
    }
  }

  /** The member's path relative to the target, or an error when it would land elsewhere. */
  private memberPath(name: string): string {
    if (name.includes('\0')) throw this.refuse(name, 'the name contains a NUL byte')
    if (name.startsWith('/')) throw this.refuse(name, 'absolute paths are not allowed')
    const parts = name.split('/').filter((p) => p !== '' && p !== '.')
    if (parts.includes('..')) throw this.refuse(name, 'the path leaves the target directory')
    for (let i = 1; i < parts.length; i++) {
      if (this.links.has(parts.slice(0, i).join('/'))) throw this.refuse(name, `the path passes through the symbolic link "${parts.slice(0, i).join('/')}"`)
    }
    return parts.join('/')
  }

  private refuse(name: string, reason: string): ReplError {
    return new ReplError('INVALID_DATA', `Refusing archive member "${name}" of ${this.options.archive}: ${reason}`, {
      hint: 'The server sent an archive that would write outside the backup; nothing further is extracted.',
    })
  }

  private async makeDir(path: string): Promise<void> {
    try {
      await mkdir(path, {mode: this.options.dirMode})
    } catch (err) {
      const e = err as NodeJS.ErrnoException
      if (e.code === 'EEXIST') {
        // pg_wal may already exist (created for WAL streaming) or be the --waldir link.
        const st = await lstat(path)
        if (st.isDirectory() || st.isSymbolicLink()) return
      }
      if (e.code === 'ENOENT') {
        await mkdir(path, {mode: this.options.dirMode, recursive: true})
        return
      }
      throw fromSystemError(err, `Cannot create directory "${path}"`)
    }
  }

  private async ensureParent(path: string): Promise<void> {
    const parent = dirname(path)
    if (parent.length >= this.options.dir.length) await mkdir(parent, {mode: this.options.dirMode, recursive: true})
  }

  private async openFile(path: string, size: number): Promise<void> {
    // Opened, written and closed from this thread, one file after another as pg_basebackup
    // does: each step is short, and a trip through the thread pool per step cost more than it
    // saved (creating a thousand small files spent far more system time that way).
    let fd: number
    try {
      fd = openSync(path, 'w', this.options.fileMode)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw fromSystemError(err, `Cannot create file "${path}"`)
      await this.ensureParent(path)
      try {
        fd = openSync(path, 'w', this.options.fileMode)
      } catch (e) {
        throw fromSystemError(e, `Cannot create file "${path}"`)
      }
    }
    this.file = {fd, path, size, position: 0, writeback: this.options.writeback?.open(fd, path)}
  }

  private async fileData(data: Buffer): Promise<void> {
    let offset = 0
    while (offset < data.length) {
      const n = data.copy(this.batch, this.batchUsed, offset)
      this.batchUsed += n
      offset += n
      if (this.batchUsed === WRITE_BATCH) await this.flushBatch()
    }
  }

  private async flushBatch(): Promise<void> {
    const file = this.file
    if (!file || this.batchUsed === 0) return
    try {
      // Written from this thread: a 256 kB write into the page cache takes well under a
      // millisecond, less than handing it to libuv's thread pool and back.
      let done = 0
      while (done < this.batchUsed) done += writeSync(file.fd, this.batch, done, this.batchUsed - done, file.position + done)
    } catch (err) {
      throw fromSystemError(err, `Cannot write file "${file.path}"`)
    }
    file.position += this.batchUsed
    file.writeback?.wrote(this.batchUsed)
    this.batchUsed = 0
  }

  private async closeFile(): Promise<void> {
    const file = this.file
    if (!file) return
    try {
      if (!this.failed) await this.flushBatch()
    } finally {
      this.file = undefined
      this.batchUsed = 0
      await file.writeback?.settled()
      try {
        closeSync(file.fd)
      } catch {
        // already failed; the error that matters is being reported
      }
    }
    if (!this.failed) {
      this.options.writeback?.fileDone(file.path)
      this.options.onFile?.(file.path, file.size)
    }
  }
}
