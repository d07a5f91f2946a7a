// Request bodies as Discord receives them: JSON, or multipart with `files[n]` parts and a
// `payload_json` part (discord.js sends uploads that way).
import type { IncomingMessage } from 'node:http';

export interface UploadedFile {
  /** `n` of the `files[n]` part: what `attachments[].id` refers to in the payload. */
  index: string;
  filename: string;
  contentType: string;
  bytes: Buffer;
}

export interface ParsedBody {
  json: unknown;
  files: UploadedFile[];
}

export async function readBody(req: IncomingMessage): Promise<ParsedBody> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const raw = Buffer.concat(chunks);
  const type = req.headers['content-type'] ?? '';
  if (raw.length === 0) return { json: undefined, files: [] };
  if (!type.startsWith('multipart/form-data')) return { json: JSON.parse(raw.toString('utf8')), files: [] };
  const form = await new Request('http://stand-in/', {
    method: 'POST',
    headers: { 'content-type': type },
    body: raw,
  }).formData();
  let json: unknown;
  const files: UploadedFile[] = [];
  for (const [name, value] of form.entries()) {
    if (name === 'payload_json' && typeof value === 'string') {
      json = JSON.parse(value);
      continue;
    }
    const index = /^files\[(\d+)\]$/.exec(name)?.[1];
    if (index === undefined || typeof value === 'string') continue;
    files.push({
      index,
      filename: value.name,
      contentType: value.type || 'application/octet-stream',
      bytes: Buffer.from(await value.arrayBuffer()),
    });
  }
  return { json, files };
}
