import type { XmlObject, XmlValue } from './types.ts';
import { ATTRIBUTES_KEY, CDATA_KEY, type OrderedAttributes, type OrderedNode, TEXT_KEY } from './xml-document.ts';
import { decodeEntities } from './xml-entities.ts';

/**
 * One element's value exactly as Python's `xmltodict.parse` gives it (what cdr-receiver-db served):
 * attributes as "@name", children by name in document order, a repeated child as an array, a single one as
 * is; text alone as a string, text beside attributes or children as "#text"; nothing at all as null.
 * Text is stripped of surrounding whitespace, as xmltodict does by default.
 */
export function xmltodictValue(children: OrderedNode[], attributes: OrderedAttributes | undefined): XmlValue {
  let object: XmlObject | null = null;
  if (attributes !== undefined) {
    // The parser's attribute map already has "@name" keys in document order; reuse it instead of copying.
    for (const key in attributes) {
      const value = attributes[key]!;
      if (value.includes('&')) attributes[key] = decodeEntities(value);
    }
    object = attributes;
  }
  let text: string | null = null;
  for (const node of children) {
    for (const key in node) {
      if (key === ATTRIBUTES_KEY) continue;
      if (key === TEXT_KEY) {
        text = join(text, decodeEntities(node[key] as string));
      } else if (key === CDATA_KEY) {
        for (const part of node[key] as OrderedNode[]) {
          if (typeof part[TEXT_KEY] === 'string') text = join(text, part[TEXT_KEY]);
        }
      } else {
        const value = xmltodictValue(node[key] as OrderedNode[], node[ATTRIBUTES_KEY] as OrderedAttributes | undefined);
        object ??= {};
        addChild(object, key, value);
      }
      break;
    }
  }
  if (text !== null) {
    text = text.trim();
    if (text === '') text = null;
  }
  if (object === null) return text;
  if (text !== null) object[TEXT_KEY] = text;
  return object;
}

function join(text: string | null, piece: string): string {
  return text === null ? piece : text + piece;
}

/** xmltodict's rule: the second occurrence of a name turns its value into an array. */
function addChild(object: XmlObject, name: string, value: XmlValue): void {
  if (!Object.hasOwn(object, name)) {
    setOwn(object, name, value);
    return;
  }
  const existing = object[name]!;
  if (Array.isArray(existing)) existing.push(value);
  else object[name] = [existing, value];
}

/** Assignment that cannot reach the prototype, whatever the name. */
export function setOwn(object: XmlObject, name: string, value: XmlValue): void {
  if (name === '__proto__') Object.defineProperty(object, name, { value, enumerable: true, writable: true, configurable: true });
  else object[name] = value;
}
