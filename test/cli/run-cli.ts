// Runs `npm run generate`'s (or `import-checkpoint`'s) entry point as a child process, as a user
// would, with a clean env.
// Asynchronously: a test worker blocked in spawnSync cannot answer vitest's own calls.
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const root = path.resolve(import.meta.dirname, '..', '..');
const tsx = path.join(root, 'node_modules', '.bin', 'tsx');
// `node --import tsx` from any working folder (the name alone resolves from the cwd)
const tsxLoader = pathToFileURL(path.join(root, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href;
const cli = path.join(root, 'src', 'cli.ts');
const importer = path.join(root, 'src', 'import-checkpoint.ts');
const makeTinyModelScript = path.join(root, 'scripts', 'make-tiny-model.ts');

export interface CliRun {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** `ulimitFileKb` caps the size of any file the process writes (bash `ulimit -f`): a full disk. */
export function generate(args: string[], options: { cwd: string; ulimitFileKb?: number }): Promise<CliRun> {
  return run(cli, args, options);
}

/** `npm run import-checkpoint -- …`. */
export function importCheckpoint(
  args: string[],
  options: {
    cwd: string;
    timeoutMs?: number;
    ulimitFileKb?: number;
    onSpawn?: (child: ChildProcess) => void;
  },
): Promise<CliRun> {
  // as package.json runs it: node --import tsx (signals reach it directly)
  return run(importer, args, { ...options, viaNode: true });
}

/** `npm run make-tiny-model -- …`. */
export function makeTinyModel(args: string[], options: { cwd: string }): Promise<CliRun> {
  return run(makeTinyModelScript, args, options);
}

function run(
  entry: string,
  args: string[],
  options: {
    cwd: string;
    ulimitFileKb?: number;
    timeoutMs?: number;
    viaNode?: boolean;
    onSpawn?: (child: ChildProcess) => void;
  },
): Promise<CliRun> {
  const { PATH, HOME } = process.env;
  const [runner, entryArgs] = options.viaNode
    ? [process.execPath, ['--import', tsxLoader, entry, ...args]]
    : [tsx, [entry, ...args]];
  const [command, argv] =
    options.ulimitFileKb === undefined
      ? [runner, entryArgs]
      : ['bash', ['-c', `ulimit -f ${options.ulimitFileKb} && exec "$0" "$@"`, runner, ...entryArgs]];
  const child = spawn(command, argv, {
    cwd: options.cwd,
    env: { PATH, HOME },
    timeout: options.timeoutMs ?? 120_000,
  });
  options.onSpawn?.(child);
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (status, signal) => resolve({ status, signal, stdout, stderr }));
  });
}
