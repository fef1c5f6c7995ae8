import {basename} from 'node:path'

/**
 * repl as a drop-in for PostgreSQL's tools. The commands that do a tool's job report errors in
 * that tool's words and under its name (`pg_basebackup: error: …`), so scripts, log filters and
 * test suites written against the C tools keep matching. Run under a tool's name (a link named
 * `pg_basebackup` to repl's `bin/run.js`) repl also takes the tool's command line as it is and
 * exits 1 on any error, as the tool does.
 */
const DROP_IN_COMMANDS: Record<string, string> = {
  pg_basebackup: 'basebackup',
  pg_receivewal: 'receivewal',
  pg_recvlogical: 'recvlogical',
  pg_waldump: 'waldump',
  pg_verifybackup: 'verify',
}

/** The PostgreSQL tool a repl command does the job of (basebackup → pg_basebackup), if any. */
export function mirroredTool(commandId: string | undefined): string | undefined {
  return Object.keys(DROP_IN_COMMANDS).find((tool) => DROP_IN_COMMANDS[tool] === commandId)
}

/** The PostgreSQL tool repl was run as, if any. */
export function dropInTool(argv1: string | undefined = process.argv[1]): string | undefined {
  const name = basename(argv1 ?? '').replace(/\.js$/, '')
  return Object.hasOwn(DROP_IN_COMMANDS, name) ? name : undefined
}

/** oclif's arguments: the tool's command first when run as a drop-in. */
export function commandArgs(argv: string[] = process.argv): string[] {
  const tool = dropInTool(argv[1])
  return tool ? [DROP_IN_COMMANDS[tool]!, ...argv.slice(2)] : argv.slice(2)
}
