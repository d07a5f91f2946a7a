// `npm run import-checkpoint` and `npm run generate --model FILE.safetensors` end to end: child
// processes on the tiny SD 1.x checkpoint (test/fixtures/sd1-tiny-checkpoint), as a user runs them.
import { execFileSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readPngText } from '../../src/diffusion/png-text.ts';
import { backdate, LONG_AGO_MS, makeTemporaryFolder } from '../support/leftovers.ts';
import { TINY_CHECKPOINT, TINY_VAE } from '../support/safetensors.ts';
import { importCheckpoint, generate as run } from './run-cli.ts';

const work = mkdtempSync(path.join(tmpdir(), 'hiresbot-import-cli-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('npm run import-checkpoint', () => {
  it('writes the ONNX folder and says what it imported', async () => {
    const out = path.join(work, 'imported');
    const result = await importCheckpoint(
      [TINY_CHECKPOINT, '--vae', TINY_VAE, '--dtype', 'fp32', '--out', out],
      {
        cwd: work,
      },
    );
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(
      new RegExp(
        `^imported model \\[cc9fbb7dc1\\] with VAE vae \\[04b9f06b7d\\] into ${out} \\(fp32\\) in [\\d.]+ s: UNet 32 wide × 1/2/4/4, CLIP 2 layers × 64\\n$`,
      ),
    );
    expect(result.stderr).toContain('100% (VAE encoder)');
    expect(readdirSync(out).sort()).toEqual([
      'checkpoint.json',
      'model_index.json',
      'text_encoder',
      'tokenizer',
      'unet',
      'vae_decoder',
      'vae_encoder',
    ]);
    expect(readdirSync(path.join(out, 'unet')).sort()).toEqual([
      'config.json',
      'model.onnx',
      'model.onnx_data',
    ]);
  });

  it.each([
    ['no arguments: the usage', [], 2, /^usage: npm run import-checkpoint -- FILE\.safetensors/],
    [
      'no --out',
      [TINY_CHECKPOINT],
      2,
      /^hiresbot import-checkpoint: --out DIR is required \(the folder to write\)\n$/,
    ],
    [
      'an unknown --dtype',
      [TINY_CHECKPOINT, '--dtype', 'bf16', '--out', 'x'],
      2,
      /^hiresbot import-checkpoint: --dtype must be fp32 or fp16 \(got "bf16"\)\n$/,
    ],
    [
      'a .ckpt',
      ['model.ckpt', '--out', 'x'],
      1,
      /^hiresbot import-checkpoint: model\.ckpt is a pickled PyTorch checkpoint/,
    ],
    [
      'a VAE as the checkpoint',
      [TINY_VAE, '--out', 'x'],
      1,
      /^hiresbot import-checkpoint: vae\.safetensors is a VAE, not a checkpoint: pass it with --vae \(or MODEL_VAE\)\n$/,
    ],
  ] as [string, string[], number, RegExp][])(
    '%s exits %i with one line',
    async (_, args, status, message) => {
      const result = await importCheckpoint(args, { cwd: work });
      expect(result.status).toBe(status);
      expect(result.stderr).toMatch(message);
      expect(existsSync(path.join(work, 'x'))).toBe(false);
    },
  );

  it('Ctrl-C (SIGINT) part-way removes the half-written folder and exits 130', async () => {
    const parent = path.join(work, 'interrupted');
    mkdirSync(parent);
    const out = path.join(parent, 'm');
    const temporary = () => readdirSync(parent).filter((n) => n.startsWith('.m.importing-'));
    let seen: string[] = [];
    const result = await importCheckpoint([TINY_CHECKPOINT, '--dtype', 'fp32', '--out', out], {
      cwd: work,
      onSpawn: (child) => {
        // the signal goes the moment the temporary folder exists: the graphs are being written
        const poll = setInterval(() => {
          seen = temporary();
          if (seen.length > 0) {
            clearInterval(poll);
            child.kill('SIGINT');
          }
        }, 2);
        child.on('exit', () => clearInterval(poll));
      },
    });
    expect(seen).toHaveLength(1);
    expect(result.status).toBe(130);
    expect(result.stderr).toMatch(/hiresbot import-checkpoint: stopped by SIGINT; nothing was written\n$/);
    expect(readdirSync(parent)).toEqual([]);
  });

  it('removes what a killed import into the same folder left beside it', async () => {
    const parent = path.join(work, 'killed');
    mkdirSync(parent);
    const dead = path.join(parent, '.m.importing-999999999-0a1b2c3d');
    const other = path.join(parent, '.other.importing-999999999-0a1b2c3d');
    for (const dir of [dead, other]) makeTemporaryFolder(dir, LONG_AGO_MS);
    // written lately: maybe another container's live import (PID 1 each, its pids not ours to see)
    makeTemporaryFolder(path.join(parent, '.m.importing-999999999-f1e5f1e5'), 0);
    const result = await importCheckpoint(
      [TINY_CHECKPOINT, '--dtype', 'fp32', '--out', path.join(parent, 'm')],
      {
        cwd: work,
      },
    );
    expect(result.status).toBe(0);
    // only the leftovers of this --out: another folder's are not this import's to judge
    expect(readdirSync(parent).sort()).toEqual([
      '.m.importing-999999999-f1e5f1e5',
      '.other.importing-999999999-0a1b2c3d',
      'm',
    ]);
  });

  it('never sweeps what an import into another --out left, though the names share 100 characters', async () => {
    const parent = path.join(work, 'long-names');
    mkdirSync(parent);
    const shared = 'm'.repeat(100);
    const [alpha, beta] = [`${shared}-alpha`, `${shared}-beta`];
    // an import into alpha killed part-way (SIGKILL: nothing cleans up), quiet for long since
    let killedAt: string[] = [];
    const killed = await importCheckpoint(
      [TINY_CHECKPOINT, '--dtype', 'fp32', '--out', path.join(parent, alpha)],
      {
        cwd: work,
        onSpawn: (child) => {
          const poll = setInterval(() => {
            killedAt = readdirSync(parent);
            if (killedAt.length > 0) {
              clearInterval(poll);
              child.kill('SIGKILL');
            }
          }, 2);
          child.on('exit', () => clearInterval(poll));
        },
      },
    );
    expect(killed.signal).toBe('SIGKILL');
    expect(killedAt).toHaveLength(1);
    const leftover = killedAt[0] as string;
    backdate(path.join(parent, leftover), LONG_AGO_MS);

    const intoBeta = await importCheckpoint(
      [TINY_CHECKPOINT, '--dtype', 'fp32', '--out', path.join(parent, beta)],
      {
        cwd: work,
      },
    );
    expect(intoBeta.status).toBe(0);
    expect(readdirSync(parent).sort()).toEqual([leftover, beta]);
    // the next import into alpha itself does remove it
    const intoAlpha = await importCheckpoint(
      [TINY_CHECKPOINT, '--dtype', 'fp32', '--out', path.join(parent, alpha)],
      {
        cwd: work,
      },
    );
    expect(intoAlpha.status).toBe(0);
    expect(readdirSync(parent).sort()).toEqual([alpha, beta]);
  });

  it('an --out under a file is refused before any work, naming the file (not a cleanup error)', async () => {
    const file = path.join(work, 'a-file');
    writeFileSync(file, 'x');
    const out = path.join(file, 'm');
    const result = await importCheckpoint([TINY_CHECKPOINT, '--dtype', 'fp32', '--out', out], { cwd: work });
    expect(result.status).toBe(1);
    // one line, and no progress: the checkpoint was not read
    expect(result.stderr).toBe(`hiresbot import-checkpoint: ${out}: ${file} is not a folder\n`);
  });

  it('a full disk part-way is one line naming the file, and leaves nothing behind', async () => {
    const parent = path.join(work, 'full-disk');
    mkdirSync(parent);
    const out = path.join(parent, 'm');
    // a 4 KiB file size limit stops the first weights file as a full disk would
    const args = [TINY_CHECKPOINT, '--dtype', 'fp32', '--out', out];
    const result = await importCheckpoint(args, { cwd: work, ulimitFileKb: 4 });
    expect(result.status).toBe(1);
    const file = path.join(out, 'text_encoder', 'model.onnx_data');
    expect(result.stderr.trim().split('\n').at(-1)).toBe(
      `hiresbot import-checkpoint: ${file} is over the file size limit (ulimit -f): raise the limit`,
    );
    expect(readdirSync(parent)).toEqual([]);
  });

  it('an --out on a read-only mount is one line naming it (Node said ENOENT for the folder being made)', async () => {
    const mount = path.join(work, 'read-only');
    mkdirSync(mount);
    const out = path.join(mount, 'sd');
    const result = await importCheckpoint([TINY_CHECKPOINT, '--out', out], { cwd: work, readOnly: mount });
    expect(result.status).toBe(1);
    expect(result.stderr.split('\n').at(-2)).toBe(
      `hiresbot import-checkpoint: ${mount} is read-only (writing ${out}): choose another --out`,
    );
  });

  it('an --out under /proc is refused in one line (mkdir there spun for ever)', async () => {
    const out = '/proc/hiresbot/m';
    const result = await importCheckpoint([TINY_CHECKPOINT, '--dtype', 'fp32', '--out', out], { cwd: work });
    expect(result.status).toBe(1);
    expect(result.stderr).toBe(
      `hiresbot import-checkpoint: --out ${out} is under /proc, the kernel's own file system, where no folder can be made: choose another folder\n`,
    );
  });

  it('an --out name of 250 characters imports (the temporary name beside it is cut to fit)', async () => {
    const parent = path.join(work, 'long-out');
    const out = path.join(parent, 'm'.repeat(250));
    const result = await importCheckpoint([TINY_CHECKPOINT, '--dtype', 'fp32', '--out', out], { cwd: work });
    expect(result.stderr).not.toMatch(/ENAMETOOLONG/);
    expect(result.status).toBe(0);
    expect(readdirSync(parent)).toEqual([path.basename(out)]);
  });

  it('refuses a FIFO as the checkpoint or the VAE instead of waiting forever for a writer', async () => {
    const fifo = path.join(work, 'pipe.safetensors');
    execFileSync('mkfifo', [fifo]);
    for (const args of [
      [fifo, '--out', 'x'],
      [TINY_CHECKPOINT, '--vae', fifo, '--out', 'x'],
    ]) {
      // a hang ends in the child being killed after the timeout: status null
      const result = await importCheckpoint(args, { cwd: work, timeoutMs: 30_000 });
      expect(result.status).toBe(1);
      expect(result.stderr).toBe(`hiresbot import-checkpoint: ${fifo} is not a regular file\n`);
      expect(existsSync(path.join(work, 'x'))).toBe(false);
    }
  }, 70_000);

  it("reads EXECUTION_PROVIDERS alone from the bot's settings, and only when --dtype is not given", async () => {
    const cwd = path.join(work, 'with-env');
    mkdirSync(cwd);
    // the bot's own settings, wrong, must not stop an import; the providers choose its precision
    const bot = 'QUEUE_MAX=0\nDISCORD_APPLICATION_ID=123\n';
    writeFileSync(path.join(cwd, '.env'), `${bot}EXECUTION_PROVIDERS=cuda,cpu\n`);
    const half = await importCheckpoint([TINY_CHECKPOINT, '--out', 'half'], { cwd });
    expect(half.stderr).not.toContain('QUEUE_MAX');
    expect(half.status).toBe(0);
    expect(half.stdout).toContain(`into half (fp16)`);

    writeFileSync(path.join(cwd, '.env'), `${bot}EXECUTION_PROVIDERS=quantum\n`);
    const bad = await importCheckpoint([TINY_CHECKPOINT, '--out', 'bad'], { cwd });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toBe(
      'hiresbot import-checkpoint: EXECUTION_PROVIDERS must be a comma list of cpu, cuda, tensorrt, dml, coreml, webgpu (unknown: quantum) (got "quantum") (or give --dtype)\n',
    );
    const given = await importCheckpoint([TINY_CHECKPOINT, '--dtype', 'fp32', '--out', 'given'], { cwd });
    expect(given.status).toBe(0);
    expect(given.stdout).toContain(`into given (fp32)`);
  }, 120_000);
});

describe('npm run generate --model FILE.safetensors', () => {
  it('imports the checkpoint once into the cache and writes A1111’s model keys into the infotext', async () => {
    const models = path.join(work, 'models');
    mkdirSync(models);
    copyFileSync(TINY_CHECKPOINT, path.join(models, 'model.safetensors'));
    const args = [
      '--model',
      models,
      '--vae',
      TINY_VAE,
      '--prompt',
      'a red fox',
      '--seed',
      '3',
      '--steps',
      '3',
    ];
    const size = ['--width', '72', '--height', '64', '--hires-scale', '1.5'];
    const first = await run([...args, ...size, '--out', path.join(work, 'a')], { cwd: work });
    expect(first.status).toBe(0);
    expect(first.stderr).toMatch(/^importing .*model\.safetensors \(fp32\): 0% \(hashing\)\n/);
    const text = readPngText(readFileSync(path.join(work, 'a', 'upscaled.png'))).get('parameters');
    expect(text).toMatch(
      /^a red fox\nSteps: 3, .*Size: 72x64, Model hash: cc9fbb7dc1, Model: model, VAE hash: 04b9f06b7d, VAE: vae, Denoising strength: 0\.7, /,
    );
    expect(readdirSync(path.join(work, 'data', 'model-cache'))).toEqual([
      expect.stringMatching(/^model-[0-9a-f]{8}-fp32\+vae$/),
    ]);

    const second = await run([...args, ...size, '--out', path.join(work, 'b')], { cwd: work });
    expect(second.status).toBe(0);
    expect(second.stderr).toBe('');
    for (const name of ['base.png', 'upscaled.png']) {
      expect(readFileSync(path.join(work, 'b', name)).equals(readFileSync(path.join(work, 'a', name)))).toBe(
        true,
      );
    }
  });

  it('a full disk while importing into the cache is one line naming the cache folder, not its temporary name', async () => {
    const cwd = path.join(work, 'full-cache');
    mkdirSync(cwd);
    const args = [
      '--model',
      TINY_CHECKPOINT,
      '--prompt',
      'fox',
      '--seed',
      '3',
      '--steps',
      '2',
      '--out',
      'out',
    ];
    const result = await run(args, { cwd, ulimitFileKb: 4 });
    expect(result.status).toBe(1);
    expect(result.stderr.trim().split('\n').at(-1)).toMatch(
      /^hiresbot generate: data\/model-cache\/model-[0-9a-f]{8}-fp32\/text_encoder\/model\.onnx_data is over the file size limit \(ulimit -f\): raise the limit$/,
    );
    expect(readdirSync(path.join(cwd, 'data', 'model-cache'))).toEqual([]);
  });

  it('an import from before the list of files is still used when it cannot be imported again (a full or read-only cache)', async () => {
    const cwd = path.join(work, 'unlisted-cache');
    mkdirSync(cwd);
    const args = ['--model', TINY_CHECKPOINT, '--prompt', 'fox', '--seed', '3', '--steps', '2'];
    const size = ['--width', '64', '--height', '64'];
    expect((await run([...args, ...size, '--out', 'a'], { cwd })).status).toBe(0);
    const [name] = readdirSync(path.join(cwd, 'data', 'model-cache'));
    const dir = path.join('data', 'model-cache', `${name}`);
    const json = path.join(cwd, dir, 'checkpoint.json');
    const { files: _, ...unlisted } = JSON.parse(readFileSync(json, 'utf8'));
    writeFileSync(json, JSON.stringify(unlisted));
    // the PNGs fit in 200 KB, the import's 13 MB text encoder does not
    const result = await run([...args, ...size, '--out', 'b'], { cwd, ulimitFileKb: 200 });
    expect(result.status).toBe(0);
    expect(result.stderr.split('\n').filter((line) => !line.startsWith('importing '))).toEqual([
      `the cached import ${dir} has no list of its files: importing it again`,
      `could not import ${dir} again (${dir}/text_encoder/model.onnx_data is over the file size limit (ulimit -f): raise the limit): using it as it is`,
      '',
    ]);
    expect(
      readFileSync(path.join(cwd, 'b', 'base.png')).equals(readFileSync(path.join(cwd, 'a', 'base.png'))),
    ).toBe(true);
    expect(readdirSync(path.join(cwd, 'data', 'model-cache'))).toEqual([name]);
  });

  it('a read-only cache is used for a checkpoint copied anew (a new mtime, the same bytes), beside a leftover', async () => {
    const cwd = path.join(work, 'read-only-cache');
    const model = path.join(cwd, 'model.safetensors');
    mkdirSync(cwd);
    copyFileSync(TINY_CHECKPOINT, model);
    const args = [
      '--model',
      model,
      '--prompt',
      'fox',
      '--seed',
      '3',
      '--steps',
      '2',
      '--width',
      '64',
      '--height',
      '64',
    ];
    expect((await run([...args, '--out', 'a'], { cwd })).status).toBe(0);
    utimesSync(model, new Date(), new Date(Date.now() + 5000));
    const cache = path.join(cwd, 'data', 'model-cache');
    // and what a killed import left there, which cannot be removed now
    const leftover = path.join(cache, '.model.importing-999999999-abc');
    makeTemporaryFolder(leftover, LONG_AGO_MS);
    const result = await run([...args, '--out', 'b'], { cwd, readOnly: cache });
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(
      readFileSync(path.join(cwd, 'b', 'base.png')).equals(readFileSync(path.join(cwd, 'a', 'base.png'))),
    ).toBe(true);
    expect(existsSync(leftover)).toBe(true);
  });

  it('a MODEL_CACHE_DIR under /proc is refused in one line before any work (mkdir there spun for ever)', async () => {
    const cwd = path.join(work, 'proc-cache');
    mkdirSync(cwd);
    writeFileSync(path.join(cwd, '.env'), 'MODEL_CACHE_DIR=/proc/hiresbot/cache\n');
    const args = ['--model', TINY_CHECKPOINT, '--prompt', 'fox', '--steps', '2', '--out', 'out'];
    const result = await run(args, { cwd });
    expect(result.status).toBe(1);
    expect(result.stderr).toBe(
      "hiresbot generate: MODEL_CACHE_DIR /proc/hiresbot/cache is under /proc, the kernel's own file system, where no folder can be made: choose another folder\n",
    );
  });
});
