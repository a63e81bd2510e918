// Google's error answer: {error: {code, message, status, details?}}. Handlers throw it; the
// server sends it (never dropped mid-body, so the client always reads the reason).

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly grpc: string,
    readonly headers: Record<string, string> = {},
    readonly details?: unknown[],
  ) {
    super(message);
  }
}

export const bad = (message: string) => new HttpError(400, message, 'INVALID_ARGUMENT');
export const notFound = (message = 'Not found.') => new HttpError(404, message, 'NOT_FOUND');
