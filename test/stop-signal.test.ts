// The bot's stop: one shutdown whatever repeats of the signal come, "stopped" (or "shutdown
// failed") as the last line, then one exit with its code. Signals come from an emitter here, as
// the process delivers them to the bot.
import { EventEmitter } from 'node:events';
import { Writable } from 'node:stream';
import { expect, it } from 'vitest';
import { createLogger } from '../src/log.ts';
import { onStopSignal } from '../src/stop-signal.ts';

/** A logger whose lines are kept, with `onLine` called as each one is written. */
function logged(onLine: (msg: string) => void = () => {}) {
  const msgs: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      const msg = JSON.parse(String(chunk)).msg as string;
      msgs.push(msg);
      onLine(msg);
      done();
    },
  });
  return { msgs, log: createLogger({ destination: stream as unknown as NodeJS.WritableStream }) };
}

function target(env: NodeJS.ProcessEnv = {}) {
  const events = new EventEmitter();
  const exits: number[] = [];
  let exited!: () => void;
  const done = new Promise<void>((resolve) => {
    exited = resolve;
  });
  return {
    events,
    exits,
    done,
    target: {
      on: (e: 'SIGINT' | 'SIGTERM', l: () => void) => events.on(e, l),
      once: (e: 'disconnect', l: () => void) => events.once(e, l),
      exit: (code: number) => {
        exits.push(code);
        exited();
      },
      env,
    },
  };
}

it('a repeat during the shutdown is told, one after it is not: "stopped" stays the last line', async () => {
  const t = target();
  // a signal that comes the moment "stopped" is written (the process is only flushing its log):
  // with a plain "stopping" flag, its line came after "stopped"
  const { msgs, log } = logged((msg) => {
    if (msg === 'stopped') t.events.emit('SIGINT');
  });
  let shutdowns = 0;
  let release!: () => void;
  onStopSignal(
    log,
    () => {
      shutdowns++;
      return new Promise<void>((resolve) => {
        release = resolve;
      });
    },
    t.target,
  );
  t.events.emit('SIGTERM');
  t.events.emit('SIGTERM'); // during the shutdown
  release();
  await t.done;
  expect(shutdowns).toBe(1);
  expect(msgs).toEqual(['shutting down', 'already shutting down', 'stopped']);
  expect(t.exits).toEqual([0]);
});

it('a shutdown that fails says so last and exits with 1; a shard also stops when its manager goes', async () => {
  const failing = target();
  const a = logged();
  onStopSignal(a.log, () => Promise.reject(new Error('database gone')), failing.target);
  failing.events.emit('SIGINT');
  await failing.done;
  expect(a.msgs).toEqual(['shutting down', 'shutdown failed']);
  expect(failing.exits).toEqual([1]);

  const shard = target({ SHARDING_MANAGER: 'true' });
  const b = logged();
  onStopSignal(b.log, () => Promise.resolve(), shard.target);
  shard.events.emit('disconnect');
  await shard.done;
  expect(b.msgs).toEqual(['shutting down', 'stopped']);
  // not a shard: a closed channel is not a stop
  const plain = target();
  onStopSignal(logged().log, () => Promise.resolve(), plain.target);
  expect(plain.events.listenerCount('disconnect')).toBe(0);
});

it('a shutdown that never ends (a database that stopped answering) is cut at the deadline: exit 1, once', async () => {
  const t = target();
  const { msgs, log } = logged();
  let release!: () => void;
  onStopSignal(
    log,
    () =>
      new Promise<void>((resolve) => {
        release = resolve;
      }),
    t.target,
    50,
  );
  t.events.emit('SIGTERM');
  await t.done;
  expect(msgs).toEqual(['shutting down', 'did not stop in time (a server that does not answer?); exiting']);
  expect(t.exits).toEqual([1]);
  // the shutdown ending later writes nothing more and exits no second time
  release();
  await new Promise((resolve) => setTimeout(resolve, 20));
  t.events.emit('SIGTERM');
  expect(msgs).toHaveLength(2);
  expect(t.exits).toEqual([1]);
});
