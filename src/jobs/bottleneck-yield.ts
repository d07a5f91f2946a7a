/**
 * Bottleneck's in-process store (no REDIS_URL) yields to the event loop before each of its steps
 * with `setTimeout(resolve, 0)`, as if it were talking to Redis: six yields per admitted job, and
 * a zero timeout waits at least 1 ms in Node. With every job paying them one after another the
 * job service spent a quarter of its time idle. An immediate yields the same way (after pending
 * I/O and promise callbacks, so the order of Bottleneck's steps is unchanged) without that floor.
 * Bottleneck has kept this method unchanged since 2.0; its Redis store is not touched.
 */
import { createRequire } from 'node:module';

interface LocalDatastore {
  prototype: { Promise: PromiseConstructor; yieldLoop(ms?: number): Promise<void> };
}

const local = createRequire(import.meta.url)('bottleneck/lib/LocalDatastore.js') as LocalDatastore;

local.prototype.yieldLoop = function yieldLoop(ms = 0) {
  return new this.Promise<void>((resolve) => {
    if (ms > 0) setTimeout(resolve, ms);
    else setImmediate(resolve);
  });
};
