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

let branded: (v: object) => boolean;

/** A brand check that runs no user code (`instanceof` would ask a Proxy's getPrototypeOf trap). */
export function isEntrogradError(v: unknown): v is EntrogradError {
  return typeof v === "object" && v !== null && branded(v);
}

export class EntrogradError extends Error {
  readonly code: ErrorCode;
  readonly #entrograd = true;
  constructor(code: ErrorCode, message: string) {
    super(message);
    this.name = "EntrogradError";
    this.code = code;
  }
  static {
    branded = (v) => #entrograd in v;
  }
}

/** A value as text for an error message, whatever it is: String() throws for objects without a
 *  prototype, symbols in templates, a throwing toString or a revoked Proxy — the message must not.
 *  Long text is cut short. */
export function show(v: unknown): string {
  let s: string;
  try {
    s = typeof v === "string" ? JSON.stringify(v) : String(v);
  } catch {
    try {
      s = Object.prototype.toString.call(v);
    } catch {
      s = `a ${typeof v} that cannot be shown`;
    }
  }
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

/** What a user's code threw while the package read a value (a getter, a Proxy trap) as the
 *  EntrogradError the API promises: an EntrogradError it threw itself passes through. */
export function foreign(e: unknown, what: string): EntrogradError {
  if (isEntrogradError(e)) return e;
  return new EntrogradError("OPTION", `${what} threw ${show(e)}`);
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
