// Every slash command, in one static, typed list: what the bot registers and routes.
import type { Command } from '../src/discord/command.ts';
import compare from './compare.ts';
import imagine from './imagine.ts';
import paste from './paste.ts';
import queue from './queue.ts';
import quota from './quota.ts';
import quotaAdmin from './quota-admin.ts';
import settings from './settings.ts';

export const commands: readonly Command[] = [imagine, compare, paste, quota, queue, settings, quotaAdmin];
