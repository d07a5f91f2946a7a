// Daily quotas reset at a configured UTC hour; a "quota day" is named by the date it started on.

const HOUR = 3_600_000;

/** The quota day `now` falls in, as YYYY-MM-DD. */
export function quotaDay(now: Date, resetHourUtc: number): string {
  return new Date(now.getTime() - resetHourUtc * HOUR).toISOString().slice(0, 10);
}

/** When the quota day containing `now` ends. */
export function nextReset(now: Date, resetHourUtc: number): Date {
  const start = Date.parse(`${quotaDay(now, resetHourUtc)}T00:00:00Z`) + resetHourUtc * HOUR;
  return new Date(start + 24 * HOUR);
}
