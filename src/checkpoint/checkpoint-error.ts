/**
 * Anything wrong with a checkpoint or VAE file: a one-line message that names the file and, where
 * one is at fault, the tensor. The importer never writes a half-finished folder behind one.
 */
export class CheckpointError extends Error {
  override name = 'CheckpointError';
}
