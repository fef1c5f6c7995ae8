import type {Lsn} from '../wal/lsn.js'

/**
 * Where streamed WAL goes. receivewal writes segment files into a directory (.partial while
 * incomplete, renamed when full); basebackup -X stream writes into pg_wal/ or pg_wal.tar. One
 * streaming loop (src/core/receive) drives any sink, so both behave the same on the wire.
 */
export interface WalSink {
  /**
   * Write `data`, which starts at `start` on `timeline` and directly follows the previous
   * write on that timeline (the loop guarantees contiguity). May span segment boundaries.
   */
  write(timeline: number, start: Lsn, data: Buffer): Promise<void>
  /** Make everything written durable (fsync unless disabled); returns the flushed position. */
  flush(): Promise<Lsn>
  /** Store a timeline history file (e.g. 00000002.history) received with TIMELINE_HISTORY. */
  writeHistoryFile(name: string, content: Buffer): Promise<void>
  /**
   * Finish: `complete` segments are finalized; an incomplete last segment stays .partial (or
   * is padded, for a backup's pg_wal, where the server expects full segments).
   */
  close(options: {reason: 'end' | 'error' | 'interrupted'}): Promise<void>
}
