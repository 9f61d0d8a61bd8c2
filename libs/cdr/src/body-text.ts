const utf16be = new TextDecoder('utf-16be');

/**
 * The POST body as text, whatever the Content-Type said. CMS sends UTF-8; a byte order mark (UTF-8 or UTF-16)
 * is tolerated and removed, since some proxies and test tools add one.
 */
export function bodyText(body: string | Uint8Array): string {
  let text: string;
  if (typeof body === 'string') {
    text = body;
  } else {
    const bytes = Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    if (bytes[0] === 0xff && bytes[1] === 0xfe) text = bytes.toString('utf16le');
    else if (bytes[0] === 0xfe && bytes[1] === 0xff) text = utf16be.decode(bytes);
    else text = bytes.toString('utf8');
  }
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}
