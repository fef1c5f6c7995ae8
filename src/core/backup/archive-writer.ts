import {join} from 'node:path'
import type {Writable} from 'node:stream'

import {algorithmOfFileName, decompressStream, FILE_SUFFIX, type CompressionSpec} from '../compress/index.js'
import {standbyAutoConfText} from '../server/standby-signal.js'
import {BatchFile} from './batch-file.js'
import type {EarlyWriteback} from './early-writeback.js'
import {ArchiveExtractor} from './extract.js'
import {mapTablespace, type BackupOptions} from './options.js'
import {ChainWriter} from './stream-writer.js'
import {TarArchiveOutput, type ExtraMember, type TarOutputOptions} from './tar-output.js'

/**
 * Where each archive of a BASE_BACKUP stream goes: unpacked into the data directory or a
 * tablespace's (plain), a tar file per tablespace, or standard output; and where the manifest
 * goes. The run feeds whichever writer is current.
 */
export interface ArchiveWriter {
  write(chunk: Buffer): Promise<void>
  end(extra?: ExtraMember[]): Promise<void>
  destroy(err?: Error): void
}

export interface ArchiveContext {
  options: Pick<BackupOptions, 'target' | 'tablespaceMappings' | 'manifest'>
  plain: boolean
  toStdout: boolean
  /** Where `-D -` writes (process.stdout when not given). */
  stdout?: Writable
  fileMode: number
  dirMode: number
  clientCompression?: CompressionSpec
  /** PostgreSQL 13/14 archives lack the end-of-archive blocks. */
  addTrailer: boolean
  recoveryConf?: {primaryConninfo: string; slot?: string}
  writeback: EarlyWriteback | undefined
  /** Plain: a regular file was written. */
  onFile(): void
  /** Tar: an archive file will be written at `path`. */
  onOutputFile(path: string): void
  /** To stdout: the base archive, to end once the manifest (which arrives after it) is in. */
  deferBase(writer: ArchiveWriter): void
}

/** The writer for archive `name` of the tablespace at `location` (null: the base), and its progress label. */
export async function openArchiveWriter(name: string, location: string | null, ctx: ArchiveContext): Promise<{writer: ArchiveWriter; label: string}> {
  const o = ctx.options
  const isBase = location === null
  const serverAlgorithm = algorithmOfFileName(name)
  if (ctx.plain) {
    const dir = isBase ? o.target : mapTablespace(location, o.tablespaceMappings)
    const label = isBase ? 'base' : location
    const extractor = new ArchiveExtractor({
      dir,
      archive: name,
      fileMode: ctx.fileMode,
      dirMode: ctx.dirMode,
      mapLink: isBase ? (t) => mapTablespace(t, o.tablespaceMappings) : undefined,
      onFile: () => ctx.onFile(),
      writeback: ctx.writeback,
    })
    if (!serverAlgorithm) return {label, writer: {write: (c) => extractor.write(c), end: () => extractor.end(), destroy: () => extractor.destroy()}}
    const chain = new ChainWriter([decompressStream(serverAlgorithm), extractor.writable()])
    return {label, writer: {write: (c) => chain.write(c), end: () => chain.end(), destroy: (e) => chain.destroy(e)}}
  }
  const fileName = name + (ctx.clientCompression ? FILE_SUFFIX[ctx.clientCompression.algorithm] : '')
  const injectManifest = ctx.toStdout && o.manifest
  const rewrite = isBase && (ctx.recoveryConf || injectManifest)
    ? {recovery: ctx.recoveryConf ? {autoConf: (text: string) => standbyAutoConfText(text, ctx.recoveryConf!), fileMode: ctx.fileMode} : undefined}
    : undefined
  let destination: TarOutputOptions['destination']
  if (ctx.toStdout) {
    destination = {stream: ctx.stdout ?? process.stdout}
  } else {
    const path = join(o.target, fileName)
    destination = {path, fileMode: ctx.fileMode, writeback: ctx.writeback}
    ctx.onOutputFile(path)
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
  if (injectManifest) return {label: fileName, writer: {...writer, end: async () => void ctx.deferBase(writer)}}
  return {label: fileName, writer}
}

/**
 * The manifest's writer: backup_manifest.tmp (renamed once the backup is complete), or, to
 * stdout, memory (`chunks`) until it goes into the base archive.
 */
export async function openManifestWriter(ctx: ArchiveContext): Promise<{writer: ArchiveWriter; chunks?: Buffer[]}> {
  if (ctx.toStdout) {
    const chunks: Buffer[] = []
    const writer: ArchiveWriter = {
      write: async (chunk) => void chunks.push(Buffer.from(chunk)),
      end: async () => {},
      destroy: () => {},
    }
    return {writer, chunks}
  }
  const file = await BatchFile.create(join(ctx.options.target, 'backup_manifest.tmp'), ctx.fileMode, ctx.writeback)
  return {writer: {write: (c) => file.write(c), end: () => file.close(), destroy: () => file.abandon()}}
}
