import {pipeline} from 'node:stream/promises'
import type {Readable, Writable} from 'node:stream'

/**
 * Feeds a chain of Node streams (decompressor → tar parser, or compressor → file) from the
 * protocol loop: `write` resolves when the chain can take more, so a slow end of the chain
 * slows the reads from the server; `end` resolves once everything has reached its destination.
 * A failure anywhere in the chain rejects the next write or the end.
 */
export class ChainWriter {
  private failure?: Error
  private readonly done: Promise<void>

  /** `streams` run from the head (written to) to the destination. */
  constructor(private readonly streams: [Writable, ...Array<Readable | Writable>] | [Writable], extra: Array<Promise<unknown>> = []) {
    const chain = streams.length > 1 ? pipeline(streams as unknown as [Readable, Writable]) : finished(streams[0])
    this.done = Promise.all([chain, ...extra]).then(() => undefined)
    this.done.catch((err: Error) => {
      this.failure ??= err
    })
  }

  get head(): Writable {
    return this.streams[0]
  }

  /** `chunk` is copied: streams keep what they buffer, and the caller's buffer is reused. */
  async write(chunk: Buffer): Promise<void> {
    if (this.failure) throw this.failure
    if (this.head.write(Buffer.from(chunk))) return
    await new Promise<void>((resolve, reject) => {
      const onDrain = () => {
        cleanup()
        resolve()
      }
      const onFail = (err: unknown) => {
        cleanup()
        reject(err)
      }
      const cleanup = () => this.head.off('drain', onDrain)
      this.head.once('drain', onDrain)
      this.done.then(() => onDrain(), onFail)
    })
    if (this.failure) throw this.failure
  }

  async end(): Promise<void> {
    if (this.failure) throw this.failure
    this.head.end()
    await this.done
  }

  /** Stop the chain after a failure elsewhere; pending work is abandoned. */
  destroy(err?: Error): void {
    for (const s of this.streams) s.destroy(err)
    this.done.catch(() => {})
  }
}

function finished(stream: Writable): Promise<void> {
  return new Promise((resolve, reject) => {
    stream.once('finish', () => resolve())
    stream.once('close', () => resolve())
    stream.once('error', reject)
  })
}
