// Graph's error answer: {error: {code, message, innerError{date, request-id, ...}}}, with
// errors.md's detailed code nested as innererror.code. Handlers throw it; the server sends it.

export class GraphError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
    /** errors.md's detailed code, nested as innererror.code. */
    readonly detail?: string,
  ) {
    super(message);
  }
}
