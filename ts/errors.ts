import { Status } from "./core/abi.js";

/** Every error entrograd throws on purpose. `code` says what kind of mistake it was. */
export type ErrorCode =
  | "SHAPE" // lengths or sizes that do not fit
  | "NON_FINITE" // NaN or ±Infinity in inputs, targets, or a step's result
  | "OPTION" // an option out of range or of the wrong type
  | "DISPOSED" // the model was disposed
  | "NOT_READY" // a WebAssembly backend used before init()
  | "MEMORY" // the core cannot allocate
  | "FORMAT"; // not a valid entrograd safetensors file

export class EntrogradError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string) {
    super(message);
    this.name = "EntrogradError";
    this.code = code;
  }
}

/** A value as text for an error message, whatever it is: String() throws for objects without a
 *  prototype, symbols in templates, or a throwing toString — the message must not. */
export function show(v: unknown): string {
  try {
    return typeof v === "string" ? JSON.stringify(v) : String(v);
  } catch {
    return Object.prototype.toString.call(v);
  }
}

export function fail(code: ErrorCode, message: string): never {
  throw new EntrogradError(code, message);
}

/** Turns a kernel status into the error users see; `what` names the call. */
export function checkStatus(status: number, what: string): void {
  switch (status) {
    case Status.Ok:
      return;
    case Status.NonFiniteInput:
      throw new EntrogradError("NON_FINITE", `${what}: x contains NaN or ±Infinity`);
    case Status.NonFiniteTarget:
      throw new EntrogradError("NON_FINITE", `${what}: targets contain NaN or ±Infinity`);
    case Status.TargetOutOfRange:
      throw new EntrogradError("OPTION", `${what}: every target must lie in [0, 1]`);
    case Status.NonFiniteResult:
      throw new EntrogradError("NON_FINITE", `${what}: the result is not finite (overflow); nothing was changed`);
    default:
      // InvalidArgs means the TypeScript side built a bad args block: a bug, not user error.
      throw new Error(`entrograd internal error: ${what}: the core returned status ${status} (${Status[status]})`);
  }
}
