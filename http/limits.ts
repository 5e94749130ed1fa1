import { bodyLimit } from 'hono/body-limit';

/** Caps request bodies; larger ones get a 413 and are never parsed. */
export function capBody(maxSize: number) {
  return bodyLimit({
    maxSize,
    // The rest of the body is never read, so this connection cannot carry another request.
    onError: (c) => c.json({ error: `The request body is larger than ${maxSize} bytes.` }, 413, { connection: 'close' }),
  });
}
