/**
 * The body is not a usable CMS `<records>` document. The message says what is wrong in terms an operator can
 * act on (and, for XML syntax errors, where); `line` is the 1-based line in the body when known.
 */
export class CdrParseError extends Error {
  override name = 'CdrParseError';
  readonly line: number | null;

  constructor(message: string, line: number | null = null) {
    super(message);
    this.line = line;
  }
}

/** 1-based line number of a character position, for error messages. */
export function lineAt(text: string, position: number): number {
  let line = 1;
  let i = text.indexOf('\n');
  while (i !== -1 && i < position) {
    line++;
    i = text.indexOf('\n', i + 1);
  }
  return line;
}
