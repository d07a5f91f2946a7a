// Offline generation with the bot's own engine: `npm run generate -- --model DIR --prompt … --out DIR`.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { config as loadDotenv } from 'dotenv';
import { parseCliArgs, USAGE, UsageError } from './cli/args.ts';
import { ConfigError, loadConfig } from './config.ts';
import { compareSheet } from './diffusion/compare-sheet.ts';
import { Engine, EngineError } from './engine/engine.ts';

async function main(argv: string[]): Promise<number> {
  let job: ReturnType<typeof parseCliArgs>;
  try {
    job = parseCliArgs(argv);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(argv.length === 0 ? `${USAGE}\n` : `hiresbot generate: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  loadDotenv({ quiet: true });
  let providers: string[];
  try {
    providers = loadConfig(process.env).model.executionProviders;
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`hiresbot generate: ${err.problems.join('; ')}\n`);
      return 2;
    }
    throw err;
  }

  let engine: Engine;
  try {
    engine = await Engine.start(
      { modelDir: job.modelDir, executionProviders: providers, previewEvery: 0, timestepRounding: 'fp16' },
      { info: () => {}, warn: (m) => process.stderr.write(`warning: ${m}\n`) },
    );
  } catch (err) {
    if (err instanceof EngineError) {
      process.stderr.write(`hiresbot generate: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
  try {
    const tty = process.stderr.isTTY;
    const result = await engine.generate(job.request, {
      denoises: job.denoises,
      onProgress: (e) => {
        if (tty) process.stderr.write(`\r${e.pass} ${e.step}/${e.total}   ${e.step === e.total ? '\n' : ''}`);
      },
    });
    mkdirSync(job.outDir, { recursive: true });
    writeFileSync(path.join(job.outDir, 'base.png'), result.base.png);
    if (result.upscaled.length === 1) {
      const [only] = result.upscaled;
      writeFileSync(path.join(job.outDir, 'upscaled.png'), only?.png as Buffer);
      process.stdout.write(`${only?.infotext}\n`);
    } else {
      for (const u of result.upscaled) {
        writeFileSync(path.join(job.outDir, `upscaled-${u.denoise}.png`), u.png);
        process.stdout.write(`${u.infotext}\n\n`);
      }
      const sheet = await compareSheet(
        result.upscaled.map((u) => ({ png: u.png, label: `denoise ${u.denoise}` })),
      );
      writeFileSync(path.join(job.outDir, 'compare.png'), sheet);
    }
    return 0;
  } finally {
    await engine.close();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`hiresbot generate: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
