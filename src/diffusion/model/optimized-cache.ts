/**
 * onnxruntime's optimised graph of a model file, saved once (`optimizedModelFilePath`) and loaded
 * with optimisation off on later starts: session creation of a full-size fp32 UNet drops from
 * about 14 s to about 5 s. The saved graph may hold kernels laid out for this CPU (NCHWc), so it
 * is keyed by the file and the files beside it (its external weights: path, size, mtime), onnxruntime's version, the CPU model and the thread
 * count, and written to a temporary folder renamed into place only once complete (one that a killed
 * process left is removed by a later load).
 */
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { cpus } from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { leftBehind } from './left-behind.ts';

/** A session of `file`, from its saved optimised graph when there is one, else saving it. */
export async function createCachedSession(
  file: string,
  sessionOptions: ort.InferenceSession.SessionOptions,
  cache: { dir: string; threads: number | undefined; log?: { warn(msg: string): void } | undefined },
): Promise<ort.InferenceSession> {
  const plan = planOptimized(file, cache.dir, cache.threads);
  if (plan.cached) {
    try {
      return await ort.InferenceSession.create(plan.cached, {
        ...sessionOptions,
        graphOptimizationLevel: 'disabled',
      });
    } catch (err) {
      cache.log?.warn(
        `${plan.cached}: unusable (${(err as Error).message.split('\n')[0]}); optimising ${file} again`,
      );
      plan.discard();
    }
  }
  try {
    const session = await ort.InferenceSession.create(file, {
      ...sessionOptions,
      ...saveOptions(plan.saveTo),
    });
    plan.commit();
    return session;
  } catch {
    // e.g. a cache folder we cannot write: load as without one (a bad model fails here again)
    plan.discard();
    return ort.InferenceSession.create(file, sessionOptions);
  }
}

interface OptimizedPlan {
  /** The saved optimised graph, when there is one for this file and machine. */
  cached: string | undefined;
  /** Where to save it otherwise (a temporary folder's model.onnx), and how to commit it. */
  saveTo: string;
  commit(): void;
  discard(): void;
}

function planOptimized(file: string, cacheDir: string, threads: number | undefined): OptimizedPlan {
  // the graph and the files beside it: its weights usually live in model.onnx_data or weights.pb,
  // and new weights under an unchanged graph must not load the old ones
  const folder = path.dirname(path.resolve(file));
  const files = readdirSync(folder, { withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => {
      const st = statSync(path.join(folder, e.name));
      return [e.name, st.size, st.mtimeMs];
    })
    .sort();
  const key = createHash('sha256')
    .update(
      JSON.stringify([path.resolve(file), files, ort.env.versions.common, cpus()[0]?.model, threads ?? 0]),
    )
    .digest('hex')
    .slice(0, 24);
  const dir = path.join(cacheDir, key);
  removeLeftBehind(cacheDir);
  const tmp = `${dir}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  return {
    cached: existsSync(path.join(dir, 'model.onnx')) ? path.join(dir, 'model.onnx') : undefined,
    saveTo: path.join(tmp, 'model.onnx'),
    commit() {
      try {
        writeFileSync(path.join(tmp, SOURCE_FILE), JSON.stringify({ file: path.resolve(file) }));
        renameSync(tmp, dir);
      } catch {
        // another process saved the same graph first: keep theirs
        rmSync(tmp, { recursive: true, force: true });
      }
      forgetOlder(cacheDir, dir, path.resolve(file));
    },
    discard() {
      rmSync(tmp, { recursive: true, force: true });
      if (existsSync(dir)) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Which model file a saved graph was made from, beside it. */
const SOURCE_FILE = 'source.json';

/**
 * Once a new graph of `file` is saved, the graphs saved for it before go (other weights, another
 * onnxruntime: a full UNet's size each, else kept for ever); graphs of other files stay. One saved
 * by a process with other settings (threads) goes too: it saves its own again at its next start.
 */
function forgetOlder(cacheDir: string, kept: string, file: string): void {
  const keptAt = statSync(kept, { throwIfNoEntry: false })?.mtimeMs ?? 0;
  for (const entry of readdirSync(cacheDir, { withFileTypes: true })) {
    const dir = path.join(cacheDir, entry.name);
    if (!entry.isDirectory() || dir === kept || entry.name.includes('.tmp-')) continue;
    try {
      const source = JSON.parse(readFileSync(path.join(dir, SOURCE_FILE), 'utf8')) as { file?: string };
      if (source.file === file && statSync(dir).mtimeMs < keptAt)
        rmSync(dir, { recursive: true, force: true });
    } catch {
      // saved before graphs named their file, or being written: not ours to judge
    }
  }
}

/**
 * Removes the temporary folders of saves that a killed process left (onnxruntime's graph, a UNet's
 * size), once abandoned for a while (see left-behind.ts).
 */
function removeLeftBehind(cacheDir: string): void {
  let entries: string[];
  try {
    entries = readdirSync(cacheDir);
  } catch {
    return; // no cache folder yet
  }
  for (const entry of entries) {
    const m = /\.tmp-(\d+)-[0-9a-z]+$/.exec(entry);
    const dir = path.join(cacheDir, entry);
    if (m && leftBehind(dir, Number(m[1]))) rmSync(dir, { recursive: true, force: true });
  }
}

/** Session options that make onnxruntime save its optimised graph (weights beside it) at `to`. */
function saveOptions(to: string): ort.InferenceSession.SessionOptions {
  mkdirSync(path.dirname(to), { recursive: true });
  return {
    optimizedModelFilePath: to,
    // the save warns that the graph is for this machine only, on every first start: the cache key
    // (file, onnxruntime version, CPU model, threads) already says so; errors still show
    logSeverityLevel: 3,
    extra: {
      session: {
        optimized_model_external_initializers_file_name: 'model.onnx_data',
        optimized_model_external_initializers_min_size_in_bytes: '1024',
      },
    },
  };
}
