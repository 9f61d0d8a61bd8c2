import type { XmlObject, XmlValue } from './types.ts';

/**
 * An element being read, in the shape Python's `xmltodict.parse` gives (what cdr-receiver-db served): `value`
 * holds the attributes as "@name" and then the children by name in document order; `text` collects every piece
 * of character data and CDATA, to be joined and stripped at the end tag as xmltodict does.
 */
export interface ElementFrame {
  name: string;
  value: XmlObject | null;
  text: string;
}

/** The frame for a start tag. `attributes` are already entity-decoded, in document order. */
export function openElement(name: string, attributes: Readonly<Record<string, string>>): ElementFrame {
  let value: XmlObject | null = null;
  for (const attribute in attributes) {
    value ??= {};
    // "@" + name can never be "__proto__", so plain assignment is safe here.
    value[`@${attribute}`] = attributes[attribute]!;
  }
  return { name, value, text: '' };
}

/**
 * The finished element's value: text alone as a string, text beside attributes or children as "#text" (the last
 * key), nothing at all as null. Text is stripped of surrounding whitespace after joining, as xmltodict does.
 */
export function elementValue(frame: ElementFrame): XmlValue {
  const text = frame.text.trim();
  if (frame.value === null) return text === '' ? null : text;
  if (text !== '') frame.value['#text'] = text;
  return frame.value;
}

/** Adds a finished child; xmltodict's rule: the second occurrence of a name turns its value into an array. */
export function addChild(parent: ElementFrame, name: string, value: XmlValue): void {
  parent.value ??= {};
  const object = parent.value;
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
