import { CdrParseError } from './errors.ts';

const PREDEFINED: Readonly<Record<string, string>> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
const REFERENCE = /&(?:#x([0-9A-Fa-f]+)|#([0-9]+)|([^\s&;#]+));/g;

/**
 * Decodes XML's five predefined entities and numeric character references. The parser is told not to touch
 * entities at all (a DTD is refused before parsing), so this is the only expansion there is: nothing recursive,
 * nothing that can grow a value beyond its own length.
 */
export function decodeEntities(value: string): string {
  if (!value.includes('&')) return value;
  return value.replace(REFERENCE, (reference: string, hex: string | undefined, decimal: string | undefined, name: string | undefined) => {
    if (name !== undefined) {
      if (Object.hasOwn(PREDEFINED, name)) return PREDEFINED[name]!;
      throw new CdrParseError(
        `undefined entity ${reference}: only &amp; &lt; &gt; &quot; &apos; and numeric character references are allowed`,
      );
    }
    const code = hex !== undefined ? Number.parseInt(hex, 16) : Number.parseInt(decimal!, 10);
    if (!isXmlChar(code)) throw new CdrParseError(`character reference ${reference} is not a character allowed in XML`);
    return String.fromCodePoint(code);
  });
}

/** XML 1.0 `Char` production. */
function isXmlChar(code: number): boolean {
  return (
    code === 0x9 ||
    code === 0xa ||
    code === 0xd ||
    (code >= 0x20 && code <= 0xd7ff) ||
    (code >= 0xe000 && code <= 0xfffd) ||
    (code >= 0x10000 && code <= 0x10ffff)
  );
}
