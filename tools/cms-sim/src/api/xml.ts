import { XMLBuilder } from 'fast-xml-parser';
import type { FastifyReply } from 'fastify';

/** Element content for API responses; undefined/null values are left out, booleans and numbers become text. */
type XmlValue = string | number | boolean | null | undefined | XmlNode | XmlNode[];
export interface XmlNode {
  [key: string]: XmlValue;
}

const builder = new XMLBuilder({ ignoreAttributes: false, attributeNamePrefix: '@_', format: false, suppressEmptyNode: true });

function normalise(node: XmlNode): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(node)) {
    if (value === undefined || value === null) continue;
    if (Array.isArray(value)) out[key] = value.map(normalise);
    else if (typeof value === 'object') out[key] = normalise(value);
    else out[key] = String(value);
  }
  return out;
}

function renderXml(root: string, body: XmlNode): string {
  return `<?xml version="1.0"?>\n${builder.build({ [root]: normalise(body) }) as string}`;
}

export function sendXml(reply: FastifyReply, root: string, body: XmlNode, status = 200): FastifyReply {
  return reply.code(status).type('text/xml').send(renderXml(root, body));
}

/** Success without content: CMS answers 200 to POST/PUT/DELETE. */
export function sendOk(reply: FastifyReply, location?: string): FastifyReply {
  if (location) reply.header('location', location);
  return reply.code(200).type('text/xml').send('');
}
