// The threads module inlined in JavaScript (base64), a chunk of its own imported only when the
// .wasm file itself cannot be loaded (as ../load/inline.ts for the other modules).

export async function inlinedThreads(): Promise<Uint8Array> {
  const base64 = (await import("../../pkg/threads/entrograd_threads.wasm?base64")).default;
  const text = atob(base64);
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes;
}
