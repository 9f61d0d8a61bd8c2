import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { CdrParseError } from './errors.ts';
import { MAX_DEPTH } from './hostile-input.ts';

/**
 * fast-xml-parser's `preserveOrder` output: each element is `{ [tagName]: children, ':@'?: attributes }`,
 * text is `{ '#text': string }`, CDATA is `{ '#cdata': [{ '#text': string }] }`.
 */
export type OrderedNode = Record<string, unknown>;
export type OrderedAttributes = Record<string, string>;

export const ATTRIBUTES_KEY = ':@';
export const TEXT_KEY = '#text';
// '#' cannot start an XML name, so no element can collide with these keys.
export const CDATA_KEY = '#cdata';

// Created once: building the options costs more than parsing a single-record batch.
const parser = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: false,
  // Attribute keys come out as xmltodict wants them, so the attribute map becomes the element object as is.
  attributeNamePrefix: '@',
  // CDR values are text: keep leading zeros ("0701234567"), "true" and numbers exactly as sent.
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: true,
  // Entities are decoded by xml-entities.ts (predefined and numeric only); DTDs never reach the parser.
  processEntities: false,
  cdataPropName: CDATA_KEY,
  ignoreDeclaration: true,
  ignorePiTags: true,
  // A second guard behind the pre-scan in hostile-input.ts.
  maxNestedTags: MAX_DEPTH,
});

/** Checks well-formedness, then parses. Both run only after rejectHostileInput has passed the text. */
export function parseXmlDocument(text: string): OrderedNode[] {
  const validation = XMLValidator.validate(text);
  if (validation !== true) {
    const { msg, line, col } = validation.err;
    const where = line ? ` at line ${line}${col ? `, column ${col}` : ''}` : '';
    throw new CdrParseError(`body is not well-formed XML: ${msg.replace(/\.$/, '')}${where}`, line || null);
  }
  try {
    return parser.parse(text) as OrderedNode[];
  } catch (error) {
    throw new CdrParseError(`body could not be parsed as XML: ${(error as Error).message}`);
  }
}

/** The element name of an ordered node, or undefined for text, CDATA and comments. */
export function elementName(node: OrderedNode): string | undefined {
  for (const key in node) {
    if (key === ATTRIBUTES_KEY) continue;
    return key === TEXT_KEY || key === CDATA_KEY ? undefined : key;
  }
  return undefined;
}
