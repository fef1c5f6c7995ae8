import {createReadStream, createWriteStream} from 'node:fs'
import {mkdir, rm, symlink} from 'node:fs/promises'
import {dirname, join, normalize, resolve, sep} from 'node:path'
import {pipeline} from 'node:stream/promises'
import {createGunzip} from 'node:zlib'
import tar from 'tar-stream'

import {fromSystemError, ReplError} from '../errors.js'

/**
 * Turn a tar-format backup (base.tar and pg_wal.tar, as pg_basebackup -F t and repl basebackup
 * write them, optionally gzip-compressed) into a data directory in place, then remove the
 * archives. Tablespace archives are refused: their symlinks in base.tar point at the original
 * locations, which on the primary's own host would mean writing over its tablespaces.
 */
export async function extractTarBackup(dir: string, files: string[]): Promise<string[]> {
  const tablespaces = files.filter((f) => /^\d+\.tar/.test(f))
  if (tablespaces.length) {
    throw new ReplError('UNSUPPORTED', `${dir} is a tar backup with tablespaces (${tablespaces.join(', ')}); repl extracts only base.tar and pg_wal.tar`, {
      hint: 'Take a plain backup with --tablespace-mapping instead, or extract the archives yourself.',
    })
  }
  const base = files.find((f) => f.startsWith('base.tar'))!
  const wal = files.find((f) => f.startsWith('pg_wal.tar'))
  await extractArchive(join(dir, base), dir)
  if (wal) await extractArchive(join(dir, wal), join(dir, 'pg_wal'))
  const used = wal ? [base, wal] : [base]
  for (const f of used) await rm(join(dir, f))
  return used
}

async function extractArchive(file: string, destination: string): Promise<void> {
  const gzip = file.endsWith('.gz')
  if (!gzip && !file.endsWith('.tar')) {
    throw new ReplError('UNSUPPORTED', `Cannot extract ${file}: only .tar and .tar.gz archives are supported here`, {
      hint: 'Decompress it first, or take the backup with --format=plain.',
    })
  }
  const root = resolve(destination)
  const extract = tar.extract()
  const feeding = gzip ? pipeline(createReadStream(file), createGunzip(), extract) : pipeline(createReadStream(file), extract)
  try {
    for await (const entry of extract) {
      const out = safePath(root, entry.header.name)
      const mode = (entry.header.mode ?? 0o600) & 0o7777
      switch (entry.header.type) {
        case 'directory':
          await mkdir(out, {recursive: true, mode: mode || 0o700})
          entry.resume()
          break
        case 'file':
        case 'contiguous-file':
          await mkdir(dirname(out), {recursive: true, mode: 0o700})
          await pipeline(entry, createWriteStream(out, {mode: mode || 0o600}))
          break
        case 'symlink':
          await mkdir(dirname(out), {recursive: true, mode: 0o700})
          await symlink(entry.header.linkname ?? '', out)
          entry.resume()
          break
        default:
          entry.resume()
      }
    }
    await feeding
  } catch (err) {
    extract.destroy()
    await feeding.catch(() => {})
    if (err instanceof ReplError) throw err
    throw fromSystemError(err, `Cannot extract ${file}`)
  }
}

/** Archive member names must stay inside the destination. */
function safePath(root: string, name: string): string {
  const out = resolve(root, normalize(name))
  if (out !== root && !out.startsWith(root + sep)) throw new ReplError('INVALID_DATA', `Unsafe path in archive: ${name}`)
  return out
}
