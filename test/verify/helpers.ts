/**
 * Backups for verify tests, made with `repl basebackup`, and the corruptions PostgreSQL's
 * pg_verifybackup/t/003_corruption.pl applies, in plain form and in tar form (GNU tar
 * rewrites the archives).
 */
import {execFile} from 'node:child_process'
import {appendFile, cp, open, readFile, readdir, rm, truncate, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {promisify} from 'node:util'

import {runRepl} from '../helpers/cli.js'
import {testDir, type TestCluster} from '../helpers/cluster.js'

const run = promisify(execFile)

export async function takeBackup(c: TestCluster, args: string[]): Promise<string> {
  const target = join(await testDir('vb'), 'backup')
  const r = await runRepl(['basebackup', '-D', target, '-c', 'fast', ...args, ...c.cliArgs()])
  if (r.code !== 0) throw new Error(`basebackup ${args.join(' ')} failed: ${r.stderr}`)
  return target
}

export async function copyBackup(dir: string): Promise<string> {
  const out = join(await testDir('vc'), 'backup')
  await cp(dir, out, {recursive: true})
  return out
}

/** `repl verify ARGS DIR`, or `pg_verifybackup ARGS DIR` through a link when `as` is given. */
export function verify(dir: string, args: string[] = [], as?: string) {
  return runRepl([...(as ? [] : ['verify']), ...args, dir], {as, timeoutMs: 300_000})
}

export async function walRange(dir: string): Promise<{timeline: number; start: bigint; end: bigint}> {
  const m = JSON.parse(await readFile(join(dir, 'backup_manifest'), 'utf8'))
  const r = m['WAL-Ranges'][0]
  const lsn = (s: string) => {
    const [hi, lo] = s.split('/')
    return (BigInt(`0x${hi}`) << 32n) | BigInt(`0x${lo}`)
  }
  return {timeline: r.Timeline, start: lsn(r['Start-LSN']), end: lsn(r['End-LSN'])}
}

export function segmentName(timeline: number, lsn: bigint): string {
  const seg = lsn / 16777216n
  const h = (n: bigint) => n.toString(16).toUpperCase().padStart(8, '0')
  return h(BigInt(timeline)) + h(seg / 256n) + h(seg % 256n)
}

export function lsnText(lsn: bigint): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`
}

/** Flip one byte of a file at `offset`. */
export async function flipByte(path: string, offset: number): Promise<void> {
  const fh = await open(path, 'r+')
  try {
    const b = Buffer.alloc(1)
    await fh.read(b, 0, 1, offset)
    b[0] = b[0]! ^ 0xff
    await fh.write(b, 0, 1, offset)
  } finally {
    await fh.close()
  }
}

/** A plain-format mutation, applied to a data directory (a plain backup, or an unpacked archive). */
export interface Corruption {
  name: string
  /** Mutates the data directory `dir`; `wal` is where its WAL segments are. */
  apply(dir: string, wal: string): Promise<void>
  /** What the error says (plain form, then tar form). */
  plain: RegExp
  tar: RegExp
  /** The WAL lives in pg_wal (tar: pg_wal.tar) rather than in the data files. */
  onWal?: boolean
}

export async function walSegments(wal: string): Promise<string[]> {
  return (await readdir(wal)).filter((n) => /^[0-9A-F]{24}$/.test(n)).sort()
}

export function corruptions(range: {timeline: number; start: bigint}): Corruption[] {
  const first = segmentName(range.timeline, range.start)
  return [
    {name: 'a file added', apply: (d) => writeFile(join(d, 'extra_file'), 'This is an extra file.\n'), plain: /^\S+: error: "extra_file" is present on disk but not in the manifest$/m, tar: /^\S+: error: file "\.?\/?extra_file" is present in archive "base\.tar" but not in the manifest$/m},
    {name: 'a file removed', apply: (d) => rm(join(d, 'pg_xact/0000')), plain: /^\S+: error: "pg_xact\/0000" is present in the manifest but not on disk$/m, tar: /^\S+: error: "pg_xact\/0000" is present in the manifest but not on disk$/m},
    {name: 'a file appended to', apply: (d) => appendFile(join(d, 'global/pg_control'), 'x'), plain: /^\S+: error: "global\/pg_control" has size 8193 on disk but size 8192 in the manifest$/m, tar: /^\S+: error: file "(?:\.\/)?global\/pg_control" has size 8193 in archive "base\.tar" but size 8192 in the manifest$/m},
    {name: 'a file truncated', apply: (d) => truncate(join(d, 'global/pg_control'), 0), plain: /^\S+: error: "global\/pg_control" has size 0 on disk but size 8192 in the manifest$/m, tar: /^\S+: error: file "(?:\.\/)?global\/pg_control" has size 0 in archive "base\.tar" but size 8192 in the manifest$/m},
    {
      name: 'one byte changed',
      apply: async (d) => writeFile(join(d, 'PG_VERSION'), 'q'.repeat((await readFile(join(d, 'PG_VERSION'))).length)),
      plain: /^\S+: error: checksum mismatch for file "PG_VERSION"$/m,
      tar: /^\S+: error: checksum mismatch for file "PG_VERSION" in archive "base\.tar"$/m,
    },
    {name: 'a WAL segment removed', apply: (_d, w) => rm(join(w, first)), plain: walFailure(first), tar: walFailure(first), onWal: true},
    {
      name: 'a WAL segment damaged',
      apply: (_d, w) => flipByte(join(w, first), Number(range.start % 16777216n) + 40),
      plain: walFailure(first),
      tar: walFailure(first),
      onWal: true,
    },
  ]
}

function walFailure(segment: string): RegExp {
  return new RegExp(`^\\S+: error: WAL parsing failed for timeline 1\\n\\S+: detail: error in WAL record at \\d+/[0-9A-F]+: .+\\n\\S+: detail: in WAL file "${segment}"`, 'm')
}

/** Unpack a tar archive, mutate it, pack it again (GNU tar, plain tar output). */
export async function rewriteArchive(archive: string, mutate: (dir: string) => Promise<void>): Promise<void> {
  const dir = join(await testDir('vt'), 'x')
  await run('mkdir', ['-p', dir])
  await run('tar', ['-xf', archive, '-C', dir])
  await mutate(dir)
  await rm(archive)
  await run('tar', ['-cf', archive, '-C', dir, ...(await readdir(dir))])
  await rm(dir, {recursive: true, force: true})
}
