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
export function generate(
  args: string[],
  options: { cwd: string; ulimitFileKb?: number; readOnly?: string },
): Promise<CliRun> {
  return run(cli, args, options);
}

/** `npm run import-checkpoint -- …`. */
export function importCheckpoint(
  args: string[],
  options: {
    cwd: string;
    timeoutMs?: number;
    ulimitFileKb?: number;
    readOnly?: string;
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
    /**
     * A folder that the process sees read-only, as it is: bound onto itself read-only in a mount
     * namespace of its own (`unshare`), gone with the process, the host's mounts untouched.
     */
    readOnly?: string;
    timeoutMs?: number;
    viaNode?: boolean;
    onSpawn?: (child: ChildProcess) => void;
  },
): Promise<CliRun> {
  const { PATH, HOME } = process.env;
  const [runner, entryArgs] = options.viaNode
    ? [process.execPath, ['--import', tsxLoader, entry, ...args]]
    : [tsx, [entry, ...args]];
  const wrapped = (script: string, ...before: string[]) => [
    ...before,
    'bash',
    '-c',
    `${script} && exec "$0" "$@"`,
    runner,
    ...entryArgs,
  ];
  const [command, ...argv] =
    options.readOnly !== undefined
      ? wrapped(
          `mount --bind '${options.readOnly}' '${options.readOnly}' && mount -o remount,ro,bind '${options.readOnly}'`,
          'unshare',
          '--map-root-user',
          '--mount',
        )
      : options.ulimitFileKb !== undefined
        ? wrapped(`ulimit -f ${options.ulimitFileKb}`)
        : [runner, ...entryArgs];
  const child = spawn(command as string, argv, {
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
