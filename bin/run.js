#!/usr/bin/env node
// Production entry: runs the compiled commands in dist/ and reads oclif.manifest.json,
// so `repl --help` does not load every command.
import {execute} from '@oclif/core'

await execute({dir: import.meta.url})
