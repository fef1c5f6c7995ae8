#!/usr/bin/env node
// Production entry: runs the compiled commands in dist/ and reads oclif.manifest.json, so
// `repl --help` does not load every command.
import module from 'node:module'

// Node 22+ keeps compiled code between runs (a faster start); Node 20 lacks it and skips this.
module.enableCompileCache?.()

// The subpath skips @oclif/core's index (help, ux...), which no command needs to start.
const {execute} = await import('@oclif/core/execute')

await execute({dir: import.meta.url})
