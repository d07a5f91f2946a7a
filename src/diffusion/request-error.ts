/** A problem with one option of a request, worded for the person who typed it. */
export class RequestError extends Error {
  override name = 'RequestError';
  constructor(
    readonly option: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(`${option} ${message}`, options);
  }
}
