import {lstat, mkdir, open, symlink} from 'node:fs/promises'
import {dirname, join} from 'node:path'
import {Writable} from 'node:stream'
import * as tar from 'tar-stream'

import {fromSystemError, ReplError} from '../errors.js'

/**
 * Unpacks one archive of a plain-format backup into a directory, as it streams in. Members
 * are checked before anything is written: absolute names, `..` components, hard links and
 * paths that pass through a symbolic link unpacked from the archive are refused, so a
 * hostile or broken server cannot write outside the target. Files get PostgreSQL's modes
 * (0600/0700, or 0640/0750 for group access); tablespace links in pg_tblspc/ point where
 * -T maps them.
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
}

/** Batches below this are gathered before a write: fewer system calls for the same bytes. */
const WRITE_BATCH = 1024 * 1024

export class ArchiveExtractor {
  /** The tar parser: write the (decompressed) archive bytes into it. */
  readonly input: Writable
  /** Resolves when every member is on disk; rejects on the first bad member or write error. */
  readonly done: Promise<void>
  private readonly links = new Set<string>()

  constructor(private readonly options: ExtractOptions) {
    const extract = tar.extract()
    this.input = extract as unknown as Writable
    this.done = this.run(extract)
    // Whoever awaits `done` sees the error; the parser must stop taking input at once.
    this.done.catch((err) => extract.destroy(err))
  }

  private async run(extract: tar.Extract): Promise<void> {
    for await (const entry of extract) {
      const header = entry.header
      const rel = this.memberPath(header.name)
      const path = rel === '' ? this.options.dir : join(this.options.dir, rel)
      switch (header.type) {
        case 'directory':
          entry.resume()
          await this.makeDir(path)
          break
        case 'file':
        case 'contiguous-file':
          await this.writeFile(entry as unknown as AsyncIterable<Buffer>, path, header.size ?? 0)
          break
        case 'symlink': {
          entry.resume()
          const target = header.linkname ?? ''
          const mapped = this.options.mapLink ? this.options.mapLink(target) : target
          await this.ensureParent(path)
          await symlink(mapped, path).catch((err) => {
            throw fromSystemError(err, `Cannot create symbolic link "${path}"`)
          })
          this.links.add(rel)
          break
        }
        default:
          entry.resume()
          throw this.refuse(header.name, `member type "${header.type}" is not allowed`)
      }
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

  private async writeFile(entry: AsyncIterable<Buffer>, path: string, size: number): Promise<void> {
    let fh
    try {
      fh = await open(path, 'w', this.options.fileMode)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw fromSystemError(err, `Cannot create file "${path}"`)
      await this.ensureParent(path)
      fh = await open(path, 'w', this.options.fileMode).catch((e) => {
        throw fromSystemError(e, `Cannot create file "${path}"`)
      })
    }
    try {
      let batch: Buffer[] = []
      let batchBytes = 0
      for await (const chunk of entry) {
        batch.push(chunk)
        batchBytes += chunk.length
        if (batchBytes >= WRITE_BATCH) {
          await writeAll(fh, batch, batchBytes, path)
          batch = []
          batchBytes = 0
        }
      }
      if (batchBytes > 0) await writeAll(fh, batch, batchBytes, path)
    } finally {
      await fh.close().catch(() => {})
    }
    this.options.onFile?.(path, size)
  }
}

async function writeAll(fh: import('node:fs/promises').FileHandle, buffers: Buffer[], total: number, path: string): Promise<void> {
  try {
    let {bytesWritten} = await fh.writev(buffers)
    // writev may stop short (e.g. a signal); finish the rest.
    while (bytesWritten < total) {
      const rest = Buffer.concat(buffers).subarray(bytesWritten)
      const r = await fh.write(rest)
      bytesWritten += r.bytesWritten
    }
  } catch (err) {
    throw fromSystemError(err, `Cannot write file "${path}"`)
  }
}
