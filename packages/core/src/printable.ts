/**
 * Text from files (GGUF keys and strings, tool output) ends up in messages on a
 * terminal: control characters in it (NUL, ESC sequences, carriage returns, C1
 * controls) are shown escaped as `\xHH`, never written raw. Newlines and tabs
 * stay: messages may hold several lines (a build log's tail).
 */
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;

export function escapeControl(text: string): string {
  return text.replace(CONTROL, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
