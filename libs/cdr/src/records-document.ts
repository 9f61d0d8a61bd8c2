import { SaxesParser, type SaxesTagPlain } from 'saxes';
import { CdrParseError } from './errors.ts';
import { MAX_DEPTH } from './hostile-input.ts';
import type { XmlValue } from './types.ts';
import { xmlSyntaxError } from './xml-syntax-error.ts';
import { addChild, type ElementFrame, elementValue, openElement } from './xmltodict.ts';

export interface RecordsDocument {
  /** The attributes of the `<records>` root, entity-decoded. */
  attributes: Readonly<Record<string, string>>;
  /** Every `<record>` child of `<records>` in xmltodict form, in document order. Other children are left out. */
  records: XmlValue[];
}

// Without namespaces, names are kept as written ("a:call"), as xmltodict does. XML 1.0 is forced so that a
// version="1.1" declaration cannot let in character references (&#1;) that XML 1.0 forbids.
const OPTIONS = { xmlns: false, forceXMLVersion: true, defaultXMLVersion: '1.0' } as const;

/**
 * One pass of saxes over the body: it checks well-formedness and decodes entities while the handlers build each
 * `<record>`'s xmltodict value directly, so no intermediate tree is built or walked. The first error ends the
 * pass (the error handler throws), since nothing read after it could be trusted.
 */
class RecordsReader {
  readonly #parser = new SaxesParser<typeof OPTIONS>(OPTIONS);
  #text = '';
  /** One entry per open element; null for `<records>` itself and for anything outside a `<record>`. */
  #stack: (ElementFrame | null)[] = [];
  /** The top of #stack: the frame character data goes to, if any. */
  #current: ElementFrame | null = null;
  #root: Readonly<Record<string, string>> | null = null;
  #records: XmlValue[] = [];
  #lastClosed = '';
  #atEnd = false;

  constructor() {
    const parser = this.#parser;
    const appendText = (text: string): void => {
      if (this.#current !== null) this.#current.text += text;
    };
    parser.on('opentag', (tag) => this.#open(tag));
    parser.on('text', appendText);
    parser.on('cdata', appendText);
    parser.on('closetag', (tag) => this.#close(tag));
    parser.on('error', (error) => {
      // saxes prefixes "line:column: "; the message is rebuilt with the line and column at the end.
      const prefix = `${parser.line}:${parser.column}: `;
      const reason = error.message.startsWith(prefix) ? error.message.slice(prefix.length) : error.message;
      const failure = { reason, line: parser.line, column: parser.column, position: parser.position };
      throw xmlSyntaxError({ ...failure, atEnd: this.#atEnd, lastClosed: this.#lastClosed }, this.#text);
    });
  }

  read(text: string): RecordsDocument {
    this.#text = text;
    this.#parser.write(text);
    this.#atEnd = true;
    this.#parser.close();
    // close() fails on a body without a root element, so a root has been seen.
    const document = { attributes: this.#root!, records: this.#records };
    this.#text = '';
    this.#root = null;
    this.#records = [];
    this.#atEnd = false;
    return document;
  }

  #open(tag: SaxesTagPlain): void {
    const { name } = tag;
    const depth = this.#stack.length;
    const line = this.#parser.line;
    if (name === '__proto__') {
      throw new CdrParseError(`body could not be parsed: an element named <__proto__> (line ${line}) is not accepted`, line);
    }
    // A second guard behind the pre-scan in hostile-input.ts.
    if (depth >= MAX_DEPTH) {
      throw new CdrParseError(`elements are nested more than ${MAX_DEPTH} deep (at line ${line}); CMS records are far shallower`, line);
    }
    if (depth === 0) {
      if (name !== 'records') throw new CdrParseError(`root element is <${name}>, expected <records>`, line);
      this.#root = tag.attributes;
      this.#stack.push(null);
      return;
    }
    const inRecord = this.#current !== null || (depth === 1 && name === 'record');
    const frame = inRecord ? openElement(name, tag.attributes) : null;
    this.#stack.push(frame);
    this.#current = frame;
  }

  #close(tag: SaxesTagPlain): void {
    this.#lastClosed = tag.name;
    const frame = this.#stack.pop() ?? null;
    const parent = this.#stack.at(-1) ?? null;
    this.#current = parent;
    if (frame === null) return;
    const value = elementValue(frame);
    // Frames exist only inside a <record>, so a frame whose parent has none is a <record> itself.
    if (parent === null) this.#records.push(value);
    else addChild(parent, frame.name, value);
  }
}

let reader = new RecordsReader();

/**
 * Reads a `<records>` document. Throws CdrParseError when it is not well-formed XML or its root is not
 * `<records>`. Runs only after rejectHostileInput has passed the text (no DTD, bounded depth, sizes and counts).
 */
export function readRecordsDocument(text: string): RecordsDocument {
  try {
    return reader.read(text);
  } catch (error) {
    // The parser stopped mid-document and is in no state to start another; the next body gets a fresh one.
    reader = new RecordsReader();
    if (error instanceof CdrParseError) throw error;
    throw new CdrParseError(`body could not be parsed as XML: ${(error as Error).message}`);
  }
}
