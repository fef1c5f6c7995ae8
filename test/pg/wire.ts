/** A backend message as the server sends it: type byte, length counting itself, payload. */
export function backendMessage(type: string, payload: Buffer): Buffer {
  const out = Buffer.alloc(5 + payload.length)
  out[0] = type.charCodeAt(0)
  out.writeInt32BE(payload.length + 4, 1)
  payload.copy(out, 5)
  return out
}
