import {Transform, type TransformCallback} from 'node:stream'

import {Lz4FrameDecoder, Lz4FrameEncoder} from './lz4-frame.js'

/**
 * The LZ4 frame codec (lz4-frame.ts) as Node Transform streams. The frame format has no
 * compression level in its header; levels only change how hard an encoder searches, and ours
 * has one (fast) strategy, so a level is accepted and ignored.
 */
export function lz4CompressStream(): Transform {
  const encoder = new Lz4FrameEncoder()
  return new Transform({
    transform(chunk: Buffer, _encoding, done: TransformCallback) {
      try {
        for (const piece of encoder.push(chunk)) this.push(piece)
        done()
      } catch (err) {
        done(err as Error)
      }
    },
    flush(done: TransformCallback) {
      try {
        for (const piece of encoder.end()) this.push(piece)
        done()
      } catch (err) {
        done(err as Error)
      }
    },
  })
}

export function lz4DecompressStream(): Transform {
  const decoder = new Lz4FrameDecoder()
  return new Transform({
    transform(chunk: Buffer, _encoding, done: TransformCallback) {
      try {
        // Decoded pieces may be views into the decoder's window, which later blocks overwrite.
        for (const piece of decoder.push(chunk)) this.push(Buffer.from(piece))
        done()
      } catch (err) {
        done(err as Error)
      }
    },
    flush(done: TransformCallback) {
      try {
        decoder.end()
        done()
      } catch (err) {
        done(err as Error)
      }
    },
  })
}
