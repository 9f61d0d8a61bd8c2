import { CdrParseError, lineAt } from './errors.ts';

/** Deepest element nesting accepted. CMS records nest about 5 deep (records/record/callLeg/rxVideo/...). */
export const MAX_DEPTH = 32;

export interface InputLimits {
  /** Most elements in one body; bounds the memory one POST can take. */
  maxElements: number;
  /** Longest single text, tag (with its attributes), comment or CDATA section, in characters. */
  maxValueLength: number;
}

// CMS never sends a document type declaration, so any DTD is refused outright: no entity expansion
// (billion laughs) and no external entities, whatever the parser underneath would do with them.
const DTD = /<!\s*(?:DOCTYPE|ENTITY)/i;
// Characters XML 1.0 forbids. Postgres also refuses U+0000 in jsonb, so one would poison the batch later.
const FORBIDDEN_CHARACTER = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/;

const LT = 0x3c;
const GT = 0x3e;
const SLASH = 0x2f;
const BANG = 0x21;
const QUESTION = 0x3f;
const DOUBLE_QUOTE = 0x22;
const SINGLE_QUOTE = 0x27;

/**
 * Cheap checks before the XML parser sees the body, so that hostile input fails fast in bounded memory: the
 * parser keeps a stack entry per open element, and records-document.ts builds a value per element and text.
 */
export function rejectHostileInput(text: string, limits: InputLimits): void {
  const dtd = DTD.exec(text);
  if (dtd !== null) {
    const line = lineAt(text, dtd.index);
    throw new CdrParseError(`XML document type declarations are not accepted (found at line ${line}); CMS never sends one`, line);
  }
  const forbidden = FORBIDDEN_CHARACTER.exec(text);
  if (forbidden !== null) {
    const code = forbidden[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0');
    const line = lineAt(text, forbidden.index);
    throw new CdrParseError(`body is not XML text: character U+${code} at line ${line} is not allowed in XML (binary data?)`, line);
  }
  if (!text.isWellFormed()) throw new CdrParseError('body is not valid Unicode text: it contains an unpaired surrogate');
  checkStructure(text, limits);
}

/**
 * Counts nesting depth, elements and the length of every text, tag, comment and CDATA section in one linear
 * pass without building anything. It only has to be exact for well-formed XML; describing malformed input is
 * left to the parser, which sees it only once its size is known to be bounded.
 */
function checkStructure(text: string, limits: InputLimits): void {
  const checkLength = (from: number, to: number): void => {
    if (to - from > limits.maxValueLength) {
      const line = lineAt(text, from);
      throw new CdrParseError(
        `a single text, tag or comment starting at line ${line} is longer than ${limits.maxValueLength} characters; CDR values are short`,
        line,
      );
    }
  };
  let depth = 0;
  let elements = 0;
  let resume = 0;
  let i = text.indexOf('<');
  while (i !== -1) {
    checkLength(resume, i);
    const next = text.charCodeAt(i + 1);
    if (next === SLASH) {
      depth--;
      resume = i + 2;
    } else if (next === BANG || next === QUESTION) {
      const terminator = next === QUESTION ? '?>' : text.startsWith('<!--', i) ? '-->' : text.startsWith('<![CDATA[', i) ? ']]>' : '>';
      const end = text.indexOf(terminator, i + 2);
      checkLength(i, end === -1 ? text.length : end);
      if (end === -1) return;
      resume = end + terminator.length;
    } else {
      const close = tagEnd(text, i + 1);
      checkLength(i, close === -1 ? text.length : close);
      if (close === -1) return;
      if (text.charCodeAt(close) === LT) {
        // Malformed tag; the parser will say so. Keep counting from this '<' so that nothing slips past.
        resume = close;
        i = close;
        continue;
      }
      if (text.charCodeAt(close - 1) !== SLASH) {
        depth++;
        if (depth > MAX_DEPTH) {
          const line = lineAt(text, i);
          throw new CdrParseError(`elements are nested more than ${MAX_DEPTH} deep (at line ${line}); CMS records are far shallower`, line);
        }
      }
      elements++;
      if (elements > limits.maxElements) {
        const line = lineAt(text, i);
        throw new CdrParseError(
          `body has more than ${limits.maxElements} XML elements (at line ${line}); CMS batches are far smaller`,
          line,
        );
      }
      resume = close + 1;
    }
    i = text.indexOf('<', resume);
  }
  checkLength(resume, text.length);
}

/** Position of the '>' closing a start tag (skipping quoted attribute values), of a stray '<', or -1 at the end. */
function tagEnd(text: string, from: number): number {
  let quote = 0;
  for (let i = from; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (quote !== 0) {
      if (c === quote) quote = 0;
    } else if (c === DOUBLE_QUOTE || c === SINGLE_QUOTE) {
      quote = c;
    } else if (c === GT || c === LT) {
      return i;
    }
  }
  return -1;
}
