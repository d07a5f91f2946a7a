/**
 * The shape of a slash command file in commands/: its definition (built from the bot's limits, so
 * Discord's min/max and choices match what the server accepts) and its handler, plus the buttons,
 * menus and modals it owns. The router finds them through one static list (commands/index.ts).
 */
import type {
  ButtonInteraction,
  ChatInputCommandInteraction,
  ModalSubmitInteraction,
  RESTPostAPIChatInputApplicationCommandsJSONBody,
  StringSelectMenuInteraction,
} from 'discord.js';
import type { RequestLimits } from '../diffusion/request.ts';
import type { ComponentId, JobAction, ModalAction } from './custom-id.ts';
import type { Deliveries } from './deliveries.ts';
import type { FrontEndServices } from './services.ts';

export type CommandData = RESTPostAPIChatInputApplicationCommandsJSONBody;

/** The log the front end writes to (pino's Logger fits). */
export interface FrontEndLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface CommandContext {
  services: FrontEndServices;
  log: FrontEndLog;
  /** The bot-wide bounds (env); a server's own may be tighter. */
  limits: RequestLimits;
  /** Least time between two edits of one reply (default 2 s; tests shorten it). */
  editIntervalMs?: number;
  /** The jobs being followed, for a stop to wait for their results. */
  deliveries?: Deliveries;
}

export type ComponentInteraction = ButtonInteraction | StringSelectMenuInteraction;

export interface Command {
  data(limits: RequestLimits): CommandData;
  /**
   * Needs Manage Server. Discord hides the command from others (`default_member_permissions`),
   * but a server can override that, so the router checks again.
   */
  admin?: boolean;
  execute(interaction: ChatInputCommandInteraction, ctx: CommandContext): Promise<void>;
  /** The job components (buttons, menus) this command answers. */
  components?: readonly JobAction[];
  onComponent?(
    interaction: ComponentInteraction,
    id: Extract<ComponentId, { jobId: string }>,
    ctx: CommandContext,
  ): Promise<void>;
  modals?: readonly ModalAction[];
  onModal?(interaction: ModalSubmitInteraction, id: ComponentId, ctx: CommandContext): Promise<void>;
}

/** Checks a module's default export once, when the list is built. */
export function isCommand(value: unknown): value is Command {
  if (value === null || typeof value !== 'object') return false;
  const c = value as Partial<Command>;
  return (
    typeof c.data === 'function' &&
    typeof c.execute === 'function' &&
    (c.components === undefined || typeof c.onComponent === 'function') &&
    (c.modals === undefined || typeof c.onModal === 'function')
  );
}
