/** Text helpers for messages: the end of a command's output, said on one line. */

/** The last `n` non-empty lines of `text`, joined by `separator` (default " | "). */
export function lastLines(text: string, n = 3, separator = ' | '): string {
  return text
    .split('\n')
    .map((l) => l.trimEnd())
    .filter((l) => l.trim() !== '')
    .slice(-n)
    .join(separator);
}

/** What went wrong in a command's result, for a message: its stderr's last lines, else stdout's, else the exit code. */
export function outputTail(r: { stdout?: string; stderr?: string; exitCode?: number | null }, n = 3): string {
  return lastLines(r.stderr ?? '', n) || lastLines(r.stdout ?? '', n) || `exit code ${r.exitCode ?? 'unknown'}`;
}
