// Items Google says it already holds from another app (the phone's own backup): this app may
// not read them back, so they carry Google's word at most, never byte evidence.

/** The words every "already in your library from another app" item carries, for people (status, report and plan decide by the outcome kind). */
export const IN_LIBRARY_REASON =
  "already in your library from another app: delete it at the source yourself once you have checked, or run with `--delete-evidence received` to accept Google's word";

export function inLibrary(
  destId: string | null,
  said: string,
): { outcome: 'in-library'; destId: string | null; reason: string; evidence: { level: 'received'; detail: string } } {
  return {
    outcome: 'in-library',
    destId,
    reason: `${IN_LIBRARY_REASON} (${said})`,
    evidence: { level: 'received', detail: `Google's word only: ${said}; this app may not read the item back, so nothing was compared` },
  };
}

/** A generic failure is no word from Google that it holds the bytes: no evidence, so never deleted by the rule. */
export function probablyInLibrary(said: string): { outcome: 'in-library'; destId: null; reason: string; evidence: null } {
  return {
    outcome: 'in-library',
    destId: null,
    reason: `already in your library from another app, most likely: ${said}, which is how it answers for photos it already holds. It is not sent again; delete it at the source yourself once you have checked that Google Photos has it`,
    evidence: null,
  };
}
