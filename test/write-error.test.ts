// The one line for a write the file system refused, from the error Node really throws.
import { writeFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { writeRefusal } from '../src/write-error.ts';

function errorOf(write: () => void): unknown {
  try {
    write();
  } catch (err) {
    return err;
  }
  throw new Error('the write did not fail');
}

it('names the folder, the file and what to do on a full disk (/dev/full answers every write with ENOSPC)', () => {
  const err = errorOf(() => writeFileSync('/dev/full', 'x'));
  expect((err as NodeJS.ErrnoException).code).toBe('ENOSPC');
  expect(writeRefusal(err, '/srv/out/base.png', '--out')).toBe(
    'no space left on /srv/out while writing /srv/out/base.png: free some space or choose another --out',
  );
  expect(writeRefusal(err, '/c/m/unet/model.onnx', 'MODEL_CACHE_DIR', '/c')).toBe(
    'no space left on /c while writing /c/m/unet/model.onnx: free some space or choose another MODEL_CACHE_DIR',
  );
});

it('leaves other errors to the caller', () => {
  const err = errorOf(() => writeFileSync('/nonexistent-hiresbot/x', 'x'));
  expect(writeRefusal(err, '/nonexistent-hiresbot/x', '--out')).toBeUndefined();
  expect(writeRefusal(new Error('plain'), '/x', '--out')).toBeUndefined();
});
