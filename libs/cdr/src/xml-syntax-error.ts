import { CdrParseError, lineAt } from './errors.ts';

/** What the XML parser reported, and where it was when it did. */
export interface XmlFailure {
  /** The parser's own description, without its "line:column: " prefix. */
  reason: string;
  /** 1-based line and column of the character the parser had just read. */
  line: number;
  column: number;
  /** Index in the body just past that character. */
  position: number;
  /** True when the problem was found only at the end of the body (something left open). */
  atEnd: boolean;
  /** The element the parser closed last; an unexpected end tag is reported right after closing the one it skipped. */
  lastClosed: string;
}

const NOT_WELL_FORMED = 'body is not well-formed XML';

/**
 * Turns a saxes error into a message an operator can act on. saxes's reasons are short ("undefined entity.");
 * the ones a broken or hostile body typically causes get the name or reference involved, read back from the body.
 */
export function xmlSyntaxError(failure: XmlFailure, text: string): CdrParseError {
  const { reason, line, column, position } = failure;
  switch (reason) {
    case 'undefined entity.':
      // The parser fails right after the ';' of the reference; a name holds no '&', so the last '&' starts it.
      return new CdrParseError(
        `undefined entity ${text.slice(text.lastIndexOf('&', position - 1), position)}: only &amp; &lt; &gt; &quot; &apos; and numeric character references are allowed`,
        line,
      );
    case 'malformed character entity.':
      // The parser read from '&#' to the ';' it failed on; what lies between may hold another '&'.
      return characterReferenceError(text.slice(text.lastIndexOf('&#', position - 1), position), line, column);
    case 'disallowed character in entity name.':
    case 'empty entity name.':
      return bareAmpersand(text, text.lastIndexOf('&', position - 1));
    case 'documents may contain only one root.':
      return new CdrParseError(
        `body has more than one top-level element (another starts at line ${line}); expected a single <records> element`,
        line,
      );
    case 'document must contain a root element.':
      return new CdrParseError('body has no XML element; expected a <records> document');
    case 'unexpected close tag.':
      return notWellFormed(`<${failure.lastClosed}> is not closed before ${endTagBefore(text, position)}`, line, column);
    case 'text data outside of root node.':
      return notWellFormed('text outside the root element', line, column);
  }
  if (failure.atEnd) {
    // An '&' with no ';' after it makes the parser read the rest of the body as an entity name, so the body
    // looks truncated. Name the real cause.
    const ampersand = text.indexOf('&', text.lastIndexOf(';') + 1);
    if (ampersand !== -1) return bareAmpersand(text, ampersand);
    const unclosed = /^unclosed tag: (.*)$/.exec(reason);
    if (unclosed !== null) return notWellFormed(`<${unclosed[1]}> is not closed at the end of the body`, line, column);
  }
  return notWellFormed(reason.replace(/\.$/, ''), line, column);
}

function notWellFormed(problem: string, line: number, column: number): CdrParseError {
  return new CdrParseError(`${NOT_WELL_FORMED}: ${problem} at line ${line}, column ${column}`, line);
}

const CHARACTER_REFERENCE = /^&#(?:x[0-9A-Fa-f]+|[0-9]+);$/;

/** A reference such as &#0; names a character XML 1.0 forbids; anything else after '&#' is not a reference at all. */
function characterReferenceError(reference: string, line: number, column: number): CdrParseError {
  if (CHARACTER_REFERENCE.test(reference)) {
    return new CdrParseError(`character reference ${reference} is not a character allowed in XML`, line);
  }
  return notWellFormed(`${reference} is not a valid character reference`, line, column);
}

function bareAmpersand(text: string, ampersand: number): CdrParseError {
  const line = lineAt(text, ampersand);
  return new CdrParseError(
    `${NOT_WELL_FORMED}: '&' at line ${line} does not start an entity or character reference; a literal '&' is written &amp;`,
    line,
  );
}

/** The end tag that ends just before `position`, as written (e.g. "</records>"). */
function endTagBefore(text: string, position: number): string {
  const start = text.lastIndexOf('</', position - 1);
  return start === -1 ? 'an end tag' : `</${text.slice(start + 2, position - 1).trim()}>`;
}
