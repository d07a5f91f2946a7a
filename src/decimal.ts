/**
 * A decimal number as people write one (digits, a point, an exponent): Number() alone also reads
 * 0x10, 0b11 and 0o7, so a setting or flag typed that way would quietly become 16, 3 or 7.
 */
// unambiguous (the digits after a point only once there is a point): `\d+\.?\d*` could split a run
// of digits anywhere, and a long one with junk after it took seconds to refuse
const DECIMAL = /^\s*[+-]?(\d+(\.\d*)?|\.\d+)(e[+-]?\d+)?\s*$/i;

/** The finite number `raw` writes in decimal, or undefined. */
export function decimal(raw: string): number | undefined {
  const n = Number(raw);
  return DECIMAL.test(raw) && Number.isFinite(n) ? n : undefined;
}
