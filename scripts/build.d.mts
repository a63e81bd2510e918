export const SOURCE_DIRS: string[];
export function sourceFingerprint(root?: string): Record<string, [number, number]>;
export function build(root?: string): Promise<void>;
