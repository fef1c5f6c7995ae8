/**
 * Oracles for basebackup tests: PostgreSQL 15's pg_verifybackup (from Debian) checks every
 * file against the manifest, GNU tar and the lz4/zstd tools unpack tar output, and a server
 * started from the backup must reach a consistent state.
 */
import {execFile} from 'node:child_process'
import {createHash} from 'node:crypto'
import {existsSync} from 'node:fs'
import {chmod, mkdir, readdir, readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {promisify} from 'node:util'

import {chownTree} from '../../src/core/server/os-user.js'
import {DEBIAN_15_BIN, testDir, TestCluster} from '../helpers/cluster.js'

const run = promisify(execFile)

export interface ToolResult {
  ok: boolean
  output: string
}

async function tool(file: string, args: string[]): Promise<ToolResult> {
  try {
    const {stdout, stderr} = await run(file, args, {maxBuffer: 64 * 1024 * 1024})
    return {ok: true, output: `${stdout}${stderr}`}
  } catch (err) {
    const e = err as {stdout?: string; stderr?: string; message: string}
    return {ok: false, output: `${e.stdout ?? ''}${e.stderr ?? ''}` || e.message}
  }
}

/**
 * pg_verifybackup 15 on a plain backup. It reads manifest version 1 only, so the version 2
 * manifest of PostgreSQL 17+ is handed to it rewritten as version 1 (System-Identifier dropped,
 * Manifest-Checksum recomputed); the file list and checksums it checks are the server's.
 * Its pg_waldump decodes only PostgreSQL 15's WAL, so WAL is parsed for 15 only (`parseWal`).
 */
export async function verifyBackup(dir: string, options: {parseWal: boolean}): Promise<ToolResult> {
  const args: string[] = []
  const manifest = await readFile(join(dir, 'backup_manifest'), 'utf8')
  if (/"PostgreSQL-Backup-Manifest-Version": 2/.test(manifest)) {
    const path = join(await testDir('manifest-v1'), 'backup_manifest')
    await writeFile(path, manifestAsVersion1(manifest))
    args.push('-m', path)
  }
  if (!options.parseWal) args.push('-n')
  return tool(join(DEBIAN_15_BIN, 'pg_verifybackup'), [...args, dir])
}

export function manifestAsVersion1(text: string): string {
  let body = text.replace('"PostgreSQL-Backup-Manifest-Version": 2', '"PostgreSQL-Backup-Manifest-Version": 1').replace(/^"System-Identifier": \d+,\n/m, '')
  const at = body.indexOf('"Manifest-Checksum"')
  body = body.slice(0, at)
  return `${body}"Manifest-Checksum": "${createHash('sha256').update(body).digest('hex')}"}\n`
}

/** Unpack a tar-format backup (any compression) into a data directory pg_verifybackup and postgres accept. */
export async function unpackTarBackup(dir: string): Promise<string> {
  const out = join(await testDir('unpacked'), 'data')
  await mkdir(out, {mode: 0o700})
  for (const name of await readdir(dir)) {
    if (name === 'backup_manifest') {
      await writeFile(join(out, name), await readFile(join(dir, name)))
      continue
    }
    const m = /^(base|pg_wal|\d+)\.tar(\.gz|\.lz4|\.zst)?$/.exec(name)
    if (!m) continue
    let target = out
    if (m[1] === 'pg_wal') target = join(out, 'pg_wal')
    else if (m[1] !== 'base') target = join(out, `tablespace-${m[1]}`)
    await mkdir(target, {recursive: true, mode: 0o700})
    const filter = {'.gz': ['-z'], '.lz4': ['-I', 'lz4 -d'], '.zst': ['-I', 'zstd -d'], '': []}[m[2] ?? '']!
    const r = await tool('tar', [...filter, '-xf', join(dir, name), '-C', target])
    if (!r.ok) throw new Error(`tar -x ${name} failed: ${r.output}`)
  }
  return out
}

/** Start a server on a plain backup (as the server OS user) and wait until it accepts connections. */
export async function startFromBackup(primary: TestCluster, dataDir: string, config: Record<string, string | number> = {}): Promise<TestCluster> {
  const root = join(dataDir, '..')
  const socketDir = join(root, `sock-${Date.now()}`)
  await mkdir(socketDir, {mode: 0o755})
  await chmod(dataDir, 0o700)
  const settings = {unix_socket_directories: socketDir, ...config}
  await writeFile(join(dataDir, 'postgresql.conf'), `${await readFile(join(dataDir, 'postgresql.conf'), 'utf8')}\n${Object.entries(settings).map(([k, v]) => `${k} = '${v}'`).join('\n')}\n`)
  await chownTree(root, primary.runAs)
  const server = new TestCluster(primary.version, primary.binDir, root, dataDir, socketDir, join(root, `server-${Date.now()}.log`), 0, primary.runAs)
  await server.startOnFreePort()
  return server
}

/** The server log says recovery reached consistency (and the server is up). */
export async function reachedConsistency(server: TestCluster): Promise<boolean> {
  const log = (await server.logTail(200)).join('\n')
  return /consistent recovery state reached/.test(log) && (await server.value('SELECT 1')) === '1'
}

export function debianAvailable(): boolean {
  return existsSync(join(DEBIAN_15_BIN, 'pg_verifybackup'))
}

/** A checksum of a table's contents, to compare primary and standby. */
export function tableChecksumSql(table: string): string {
  return `SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) FROM ${table} t`
}
