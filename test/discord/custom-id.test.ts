// custom_id codec: what the bot writes it reads back; anything else is a value, not a throw.
import { describe, expect, it } from 'vitest';
import { type ComponentId, encodeCustomId, parseCustomId } from '../../src/discord/custom-id.ts';

describe('custom_id codec', () => {
  it.each<ComponentId>([
    { action: 'reroll', jobId: 'm3x9k2a1b2c3d4e5f6' },
    { action: 'upscale', jobId: 'm3x9k2a1b2c3d4e5f6' },
    { action: 'params', jobId: 'abcd' },
    { action: 'delete', jobId: 'abcd' },
    { action: 'cancel', jobId: 'abcd' },
    { action: 'paste' },
  ])('round-trips %o within Discord’s 100 characters', (id) => {
    const encoded = encodeCustomId(id);
    expect(encoded.length).toBeLessThanOrEqual(100);
    expect(parseCustomId(encoded)).toEqual({ ok: true, id });
  });

  it.each<[string, string]>([
    ['other-bot:reroll:abcd', 'foreign'],
    ['', 'foreign'],
    ['hb', 'malformed'],
    ['hb:reroll', 'malformed'],
    ['hb:reroll:ABCD', 'malformed'],
    ['hb:reroll:ab', 'malformed'],
    ['hb:reroll:abcd:extra', 'malformed'],
    ['hb:launch:abcd', 'malformed'],
    ['hb:paste:abcd', 'malformed'],
    ['hb:reroll:abcd;drop', 'malformed'],
  ])('%j is refused as %s', (customId, reason) => {
    expect(parseCustomId(customId)).toEqual({ ok: false, reason });
  });

  it('refuses to encode something that is not a job id', () => {
    expect(() => encodeCustomId({ action: 'reroll', jobId: 'a:b' })).toThrow('not a job id');
  });
});
