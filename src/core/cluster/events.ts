/**
 * What cluster setup reports while it works; the command renders it (spinner phases on a
 * terminal, plain lines otherwise, nothing under --json). Core never prints.
 */
export type ClusterEvent =
  /** A wait begins or changes (spinner text). */
  | {type: 'phase'; text: string}
  /** The current wait ended well. */
  | {type: 'done'; text: string}
  /** A fact worth a line of its own (which binaries, what changed, what was restarted). */
  | {type: 'note'; text: string}

export type ClusterProgress = (event: ClusterEvent) => void

export const noProgress: ClusterProgress = () => {}
