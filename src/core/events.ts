/**
 * The one vocabulary in which core reports long work. Core never prints: a use case takes an
 * `onProgress` callback and emits these; `progressRenderer` (cli/progress.ts) turns them into
 * spinners and bars on a terminal, plain lines otherwise, and nothing under --json.
 */
export type ProgressEvent =
  /**
   * A wait begins or changes (spinner text; the renderer adds the elapsed time). `detail`: the
   * same step as a -v line words it (pg_basebackup's "waiting for checkpoint"), so that a step
   * is one event whether progress, -v or both are shown.
   */
  | {type: 'phase'; text: string; detail?: string}
  /** The current wait ended well; `text` replaces the spinner's text. `detail` as for phase. */
  | {type: 'phase-done'; text?: string; detail?: string}
  /** A fact worth a line of its own. `verbose`: shown only with -v (pg_basebackup -v's milestones). */
  | {type: 'note'; text: string; verbose?: boolean}
  /** Something the user should know that does not stop the work. */
  | {type: 'warning'; text: string}
  /** Byte counts (a bar on a terminal). `final`: the last update, shown even between plain lines. */
  | {type: 'bytes'; done: number; total?: number; label?: string; final?: boolean}
  /** A status line that carries its own figures (receivewal's position): no elapsed time. */
  | {type: 'live'; text: string}

export type OnProgress = (event: ProgressEvent) => void

export const noProgress: OnProgress = () => {}
