// The checks an import makes before it converts anything, from the headers alone (no tensor data
// is read): cheap enough for `npm start` to refuse a wrong file at once, with the other start-up
// problems, instead of after the database and the queue are up.
import { checkSd1Checkpoint, checkVaeFile } from './family.ts';
import { SafetensorsFile } from './safetensors.ts';
import { readStructure, type Sd1Structure } from './structure.ts';
import { WeightStore } from './weights.ts';

/** Throws the CheckpointError an import of these files would throw before converting. */
export function inspectCheckpoint(file: string, vae?: string): Sd1Structure {
  const ckpt = SafetensorsFile.open(file);
  let vaeFile: SafetensorsFile | undefined;
  try {
    checkSd1Checkpoint(ckpt);
    if (vae) {
      vaeFile = SafetensorsFile.open(vae);
      checkVaeFile(vaeFile);
    }
    return readStructure(new WeightStore(ckpt, vaeFile));
  } finally {
    ckpt.close();
    vaeFile?.close();
  }
}
