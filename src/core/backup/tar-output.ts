import {createWriteStream} from 'node:fs'
import {once} from 'node:events'
import {pipeline} from 'node:stream/promises'
import {Writable, type Readable} from 'node:stream'
import * as tar from 'tar-stream'

import {fromSystemError, ReplError} from '../errors.js'
import {compressStream, decompressStream, type CompressionAlgorithm, type CompressionSpec} from '../compress/index.js'
import {BatchFile} from './batch-file.js'
import type {EarlyWriteback} from './early-writeback.js'
import {ChainWriter} from './stream-writer.js'

/**
 * Writes one archive of a tar-format backup (base.tar, 16385.tar, …) to a file or to stdout.
 *
 * Most archives are copied byte for byte (compressed on the way when client-side compression
 * is asked for; given the two closing zero blocks that PostgreSQL 13/14 leave out). The base
 * archive is rewritten member by member when something must go into it: the standby settings
 * of -R (postgresql.auto.conf amended, standby.signal added) or, when writing to stdout, the
 * backup manifest. Rewriting decompresses a server-compressed archive and compresses the result
 * again with the same method.
 */
export interface ExtraMember {
  name: string
  content: Buffer
}

export interface TarOutputOptions {
  /** A file to create (written out to disk as it goes with `writeback`), or a stream to write into (stdout; left open). */
  destination: {path: string; fileMode: number; writeback?: EarlyWriteback} | {stream: Writable}
  /** For messages. */
  archive: string
  /** The server compressed the archive with this. */
  serverCompression?: CompressionAlgorithm
  clientCompression?: CompressionSpec
  /** PostgreSQL 13/14 archives lack the end-of-archive blocks. */
  addTrailer: boolean
  /** Rewrite the archive (see above); `extra` members then go in at the end. */
  rewrite?: {
    recovery?: {autoConf: (original: string) => string; fileMode: number}
  }
}

const TAR_TRAILER = Buffer.alloc(1024)

export class TarArchiveOutput {
  private readonly writer: ChainWriter | BatchFileWriter
  private readonly rewriting: boolean
  private resolveExtras?: (members: ExtraMember[]) => void
  /** Regular-file members seen while rewriting. */
  members = 0

  /** A plain copy to a file (the common case) skips streams altogether. */
  static async open(options: TarOutputOptions): Promise<TarArchiveOutput> {
    const d = options.destination
    if (!options.rewrite && !options.clientCompression && 'path' in d) {
      return new TarArchiveOutput(options, new BatchFileWriter(await BatchFile.create(d.path, d.fileMode, d.writeback)))
    }
    return new TarArchiveOutput(options)
  }

  private constructor(private readonly options: TarOutputOptions, direct?: BatchFileWriter) {
    this.rewriting = options.rewrite !== undefined
    if (direct) {
      this.writer = direct
      return
    }
    const out = this.openDestination()
    if (!this.rewriting) {
      const chain: [Writable, ...Writable[]] = options.clientCompression ? [compressStream(options.clientCompression), out] : [out]
      this.writer = new ChainWriter(chain)
      return
    }
    // Rewrite: [decompress] → parse → repack → [compress] → destination.
    const extract = tar.extract()
    const pack = tar.pack()
    const recompress = options.clientCompression ?? (options.serverCompression ? {algorithm: options.serverCompression} : undefined)
    const output = pipeline([pack as unknown as Readable, ...(recompress ? [compressStream(recompress)] : []), out] as unknown as [Readable, Writable])
    const extras = new Promise<ExtraMember[]>((resolve) => {
      this.resolveExtras = resolve
    })
    const repack = this.repack(extract, pack, extras)
    repack.catch((err) => {
      extract.destroy(err)
      pack.destroy(err)
    })
    const input: [Writable, ...Writable[]] = options.serverCompression
      ? [decompressStream(options.serverCompression), extract as unknown as Writable]
      : [extract as unknown as Writable]
    this.writer = new ChainWriter(input, [repack, output])
  }

  private openDestination(): Writable {
    const d = this.options.destination
    if ('stream' in d) {
      // stdout stays open for whoever wrote before or after us; only our bytes are flushed.
      const stream = d.stream
      return new Writable({
        write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void) {
          if (stream.write(chunk)) cb()
          else stream.once('drain', () => cb())
        },
        final(cb: (err?: Error | null) => void) {
          cb()
        },
      })
    }
    return createWriteStream(d.path, {mode: d.fileMode, flags: 'wx', highWaterMark: 1024 * 1024})
  }

  write(chunk: Buffer): Promise<void> {
    return this.writer.write(chunk)
  }

  /** Finish the archive; `extra` members (rewrite mode only) are added before its end. */
  async end(extra: ExtraMember[] = []): Promise<void> {
    if (this.rewriting) {
      this.resolveExtras!(extra)
    } else {
      if (extra.length) throw new ReplError('PROTOCOL_ERROR', `Cannot add members to ${this.options.archive} without rewriting it`)
      if (this.options.addTrailer) await this.writer.write(TAR_TRAILER)
    }
    try {
      await this.writer.end()
    } catch (err) {
      throw wrapWriteError(err, this.options)
    }
  }

  destroy(err?: Error): void {
    this.resolveExtras?.([])
    this.writer.destroy(err)
  }

  private async repack(extract: tar.Extract, pack: tar.Pack, extras: Promise<ExtraMember[]>): Promise<void> {
    const recovery = this.options.rewrite?.recovery
    let sawAutoConf = false
    for await (const entry of extract) {
      const header = {...entry.header}
      if (header.type === 'file' || header.type === 'contiguous-file') this.members++
      if (recovery && header.name === 'postgresql.auto.conf') {
        sawAutoConf = true
        const chunks: Buffer[] = []
        for await (const chunk of entry as unknown as AsyncIterable<Buffer>) chunks.push(chunk)
        const text = recovery.autoConf(Buffer.concat(chunks).toString('utf8'))
        await addMember(pack, {...header, size: 0}, Buffer.from(text))
        continue
      }
      if (header.type !== 'file' && header.type !== 'contiguous-file') {
        entry.resume()
        await addMember(pack, header, undefined)
        continue
      }
      const sink = pack.entry(header)
      const written = once(sink as unknown as NodeJS.EventEmitter, 'finish')
      for await (const chunk of entry as unknown as AsyncIterable<Buffer>) {
        if (!sink.write(chunk)) await once(sink as unknown as NodeJS.EventEmitter, 'drain')
      }
      ;(sink as unknown as Writable).end()
      await written
    }
    if (recovery) {
      if (!sawAutoConf) await addMember(pack, {name: 'postgresql.auto.conf', mode: recovery.fileMode, type: 'file'}, Buffer.from(recovery.autoConf('')))
      await addMember(pack, {name: 'standby.signal', mode: recovery.fileMode, type: 'file'}, Buffer.alloc(0))
    }
    for (const member of await extras) {
      await addMember(pack, {name: member.name, mode: recovery?.fileMode ?? 0o600, type: 'file'}, member.content)
    }
    pack.finalize()
  }
}

/** BatchFile behind the same write/end/destroy surface as a stream chain. */
class BatchFileWriter {
  constructor(private readonly file: BatchFile) {}
  write(chunk: Buffer): Promise<void> {
    return this.file.write(chunk)
  }
  end(): Promise<void> {
    return this.file.close()
  }
  destroy(): void {
    this.file.abandon()
  }
}

function addMember(pack: tar.Pack, header: Partial<tar.Header> & {name: string}, content: Buffer | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const sink = content === undefined
      ? pack.entry(header, (err) => (err ? reject(err) : resolve()))
      : pack.entry(header, content, (err) => (err ? reject(err) : resolve()))
    if (content === undefined) (sink as unknown as Writable).end()
  })
}

function wrapWriteError(err: unknown, options: TarOutputOptions): unknown {
  if (err instanceof ReplError) return err
  const where = 'path' in options.destination ? `"${options.destination.path}"` : 'standard output'
  return fromSystemError(err, `Cannot write ${options.archive} to ${where}`)
}

