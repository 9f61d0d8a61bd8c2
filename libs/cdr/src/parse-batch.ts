import { bodyText } from './body-text.ts';
import { CdrParseError } from './errors.ts';
import { rejectHostileInput } from './hostile-input.ts';
import { toCdrRecord } from './record.ts';
import type { CdrBatch, CdrRecord, RejectedRecord } from './types.ts';
import { ATTRIBUTES_KEY, elementName, type OrderedAttributes, type OrderedNode, parseXmlDocument } from './xml-document.ts';
import { decodeEntities } from './xml-entities.ts';
import { xmltodictValue } from './xmltodict.ts';

/** Limits that keep one hostile or broken POST from taking unbounded time and memory. */
export interface ParseCdrOptions {
  /** Most XML elements in one body. Default 250,000: over 6,000 callLegEnd records; CMS batches are far smaller. */
  maxElements?: number;
  /** Longest single text value, tag with its attributes, comment or CDATA section, in characters. Default 65,536. */
  maxValueLength?: number;
}

/**
 * Parses the body of a CMS CDR POST, whatever its Content-Type. Throws CdrParseError when the body is not a
 * usable `<records>` document; records that fail validation come back in `rejected` with the reason, beside
 * the valid ones.
 */
export function parseCdrBatch(body: string | Uint8Array, options: ParseCdrOptions = {}): CdrBatch {
  const text = bodyText(body);
  if (text.trim() === '') throw new CdrParseError('body is empty; expected a <records> XML document');
  rejectHostileInput(text, { maxElements: options.maxElements ?? 250_000, maxValueLength: options.maxValueLength ?? 65_536 });
  const root = rootElement(parseXmlDocument(text));
  const attributes = root.node[ATTRIBUTES_KEY] as OrderedAttributes | undefined;
  const session = attributeText(attributes, '@session');
  if (session === null) throw new CdrParseError('<records> has no session attribute');

  const records: CdrRecord[] = [];
  const rejected: RejectedRecord[] = [];
  let position = 0;
  // Anything in <records> other than <record> is not a record and is skipped.
  for (const child of root.node['records'] as OrderedNode[]) {
    if (elementName(child) !== 'record') continue;
    const raw = xmltodictValue(child['record'] as OrderedNode[], child[ATTRIBUTES_KEY] as OrderedAttributes | undefined);
    const result = toCdrRecord(raw);
    if (result.record !== undefined) records.push(result.record);
    else rejected.push({ position, reason: result.reason, raw });
    position++;
  }
  return { session, callBridge: attributeText(attributes, '@callBridge'), records, rejected };
}

function rootElement(document: OrderedNode[]): { name: string; node: OrderedNode } {
  let root: { name: string; node: OrderedNode } | undefined;
  let count = 0;
  for (const node of document) {
    const name = elementName(node);
    if (name === undefined) continue;
    count++;
    root ??= { name, node };
  }
  if (root === undefined) throw new CdrParseError('body has no XML element; expected a <records> document');
  if (count > 1) throw new CdrParseError(`body has ${count} top-level elements; expected a single <records> element`);
  if (root.name !== 'records') throw new CdrParseError(`root element is <${root.name}>, expected <records>`);
  return root;
}

function attributeText(attributes: OrderedAttributes | undefined, key: string): string | null {
  const value = attributes?.[key];
  return value === undefined || value === '' ? null : decodeEntities(value);
}
