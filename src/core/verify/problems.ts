import {fromSystemError, ReplError} from '../errors.js'

/**
 * What a check found wrong, in pg_verifybackup's words. Problems are reported as they are
 * found and the check goes on (pg_verifybackup's behaviour), unless --exit-on-error asked to
 * stop at the first: then it is thrown instead, as the command's one error.
 */
export interface Problem {
  message: string
  /** More about it: the WAL position and file a WAL check stopped at. */
  details?: string[]
  /** The backup file or archive concerned, when there is one. */
  path?: string
  /** The WAL position concerned (X/X), when there is one. */
  lsn?: string
}

/** Ends the whole check: --exit-on-error's first problem, or one pg_verifybackup treats as fatal. */
export class VerifyFatal extends ReplError {
  constructor(message: string, details?: string[]) {
    super('INVALID_DATA', message, {details})
    this.name = 'VerifyFatal'
  }
}

export type OnProblem = (problem: Problem) => void

export class ProblemLog {
  readonly problems: Problem[] = []

  constructor(
    private readonly onProblem: OnProblem,
    private readonly exitOnError = false,
  ) {}

  get count(): number {
    return this.problems.length
  }

  report(problem: Problem): void {
    if (this.exitOnError) throw new VerifyFatal(problem.message, problem.details)
    this.problems.push(problem)
    this.onProblem(problem)
  }

  /** A failed system call on a backup file: PostgreSQL's "could not … \"path\": reason". */
  reportSystemError(err: unknown, action: string, path: string): void {
    this.report({message: fromSystemError(err, action).message, path})
  }
}
