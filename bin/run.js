#!/usr/bin/env node
// Production entry: runs the compiled commands in dist/ and reads oclif.manifest.json,
// so `repl --help` does not load every command.
// Subpath imports skip @oclif/core's index (help, ux...): a faster start for every command.
import {execute} from '@oclif/core/execute'

await execute({dir: import.meta.url})
