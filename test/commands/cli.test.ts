import {execFile} from 'node:child_process'
import {cp, mkdtemp, readFile, readdir, rm, symlink} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {promisify} from 'node:util'
import {fileURLToPath} from 'node:url'

import test from 'ava'

import {runRepl} from '../helpers/cli.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const run = promisify(execFile)

test('oclif.manifest.json is current: regenerating it from the build changes nothing', async (t) => {
  // Regenerate into a scratch copy of the package so the committed file is only compared.
  const scratch = await mkdtemp(join(tmpdir(), 'repl-manifest-'))
  try {
    await cp(join(ROOT, 'package.json'), join(scratch, 'package.json'))
    await cp(join(ROOT, 'dist'), join(scratch, 'dist'), {recursive: true})
    await symlink(join(ROOT, 'node_modules'), join(scratch, 'node_modules'))
    await run(process.execPath, [join(ROOT, 'node_modules/oclif/bin/run.js'), 'manifest', scratch], {cwd: scratch})
    const fresh = JSON.parse(await readFile(join(scratch, 'oclif.manifest.json'), 'utf8'))
    // `npm run build` rewrites the working copy, so compare with what is committed.
    const committed = JSON.parse(await committedManifest())
    t.deepEqual(committed, fresh, 'run `npm run build` and commit oclif.manifest.json')
  } finally {
    await rm(scratch, {recursive: true, force: true})
  }
})

async function committedManifest(): Promise<string> {
  try {
    return (await run('git', ['show', 'HEAD:oclif.manifest.json'], {cwd: ROOT, maxBuffer: 16 * 1024 * 1024})).stdout
  } catch {
    // Not a git checkout (e.g. an unpacked release): the file on disk is what ships.
    return readFile(join(ROOT, 'oclif.manifest.json'), 'utf8')
  }
}

test('every command in src/commands is in the manifest, with a description and examples', async (t) => {
  const manifest = JSON.parse(await readFile(join(ROOT, 'oclif.manifest.json'), 'utf8'))
  const sources = (await readdir(join(ROOT, 'src/commands'))).filter((f) => f.endsWith('.ts')).map((f) => f.slice(0, -3))
  t.deepEqual(Object.keys(manifest.commands).sort(), sources.sort())
  for (const [id, cmd] of Object.entries<any>(manifest.commands)) {
    t.truthy(cmd.summary ?? cmd.description, `${id} has a summary`)
    t.true((cmd.examples ?? []).length > 0, `${id} has examples`)
    for (const [name, flag] of Object.entries<any>(cmd.flags)) {
      if (name === 'help') continue
      t.truthy(flag.description, `${id} --${name} has a description`)
    }
  }
})

/** Median wall time of `repl args` over n runs. */
async function medianMs(args: string[], n: number): Promise<number> {
  const times: number[] = []
  for (let i = 0; i < n; i++) {
    const started = process.hrtime.bigint()
    const r = await runRepl(args)
    times.push(Number(process.hrtime.bigint() - started) / 1e6)
    if (r.code !== 0) throw new Error(r.stderr)
  }
  times.sort((a, b) => a - b)
  return times[Math.floor(n / 2)]!
}

test('repl --help and --version start fast (median of 7 runs)', async (t) => {
  const help = await medianMs(['--help'], 7)
  const version = await medianMs(['--version'], 7)
  t.log(`--help median ${help.toFixed(0)} ms, --version median ${version.toFixed(0)} ms`)
  // The aim is < 300 ms on an idle machine; the bound leaves room for a loaded CI runner.
  t.true(help < 1500, `--help took ${help} ms`)
  t.true(version < 1500, `--version took ${version} ms`)
})

test('repl --help lists every command in src/commands (help is one of them), each with its summary', async (t) => {
  const sources = (await readdir(join(ROOT, 'src/commands'))).filter((f) => f.endsWith('.ts')).map((f) => f.slice(0, -3))
  const r = await runRepl(['--help'])
  t.is(r.code, 0, r.stderr)
  const section = r.stdout.split(/^COMMANDS$/m)[1] ?? ''
  // A command line is "  name  summary"; a wrapped summary continues indented further.
  const listed = [...section.matchAll(/^ {2}(\S+) {2,}\S/gm)].map((m) => m[1]!)
  t.deepEqual(listed.sort(), sources.sort())
})

test('an unknown flag is one line and exit 2', async (t) => {
  const r = await runRepl(['status', '--bogus'])
  t.is(r.code, 2)
  t.is(r.stderr, 'repl: error: Nonexistent flag: --bogus\nhint: See --help for usage.\n')
})

test('a missing required flag is named as it is typed, with its short form', async (t) => {
  const r = await runRepl(['start-standby'])
  t.is(r.code, 2)
  t.is(r.stderr, 'repl: error: Missing required flag --pgdata (-D)\nhint: See --help for usage.\n')
})

test('an unknown command is one line and exit 2, naming the command it looks like a typo of', async (t) => {
  const typo = await runRepl(['basebakup', '-D', '/tmp/x'])
  t.is(typo.code, 2)
  t.is(typo.stderr, 'repl: error: Unknown command "basebakup"\nhint: Did you mean "basebackup"? See repl --help for the commands.\n')
  const unknown = await runRepl(['frobnicate'])
  t.is(unknown.code, 2)
  t.is(unknown.stderr, 'repl: error: Unknown command "frobnicate"\nhint: See repl --help for the commands.\n')
})
