// A small CSV reader for numeric tables: comma-separated, optional header row, quoted fields
// allowed ("a, b" and "" inside quotes). Every data value must parse as a finite number.

import { readFileSync } from "node:fs";
import { CliError } from "./errors.js";

export interface Table {
  /** Column names: the header, or "0", "1", … without one. */
  columns: string[];
  rows: number;
  /** Column-major values. */
  data: Float64Array[];
}

export class CsvError extends CliError {}

function splitLine(line: string): string[] {
  const out: string[] = [];
  let cur = "",
    quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cur += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") {
      out.push(cur.trim());
      cur = "";
    } else cur += c;
  }
  out.push(cur.trim());
  return out;
}

const isNumber = (s: string): boolean => s !== "" && Number.isFinite(Number(s));

export function parseCsv(text: string, what = "CSV"): Table {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== "");
  if (lines.length === 0) throw new CsvError(`${what}: no rows`);
  const first = splitLine(lines[0]);
  const header = !first.every(isNumber);
  const columns = header ? first : first.map((_, i) => String(i));
  const body = header ? lines.slice(1) : lines;
  if (body.length === 0) throw new CsvError(`${what}: a header but no data rows`);
  const data = columns.map(() => new Float64Array(body.length));
  body.forEach((line, r) => {
    const cells = splitLine(line);
    if (cells.length !== columns.length) {
      throw new CsvError(
        `${what}: row ${r + 1 + (header ? 1 : 0)} has ${cells.length} fields, expected ${columns.length}`,
      );
    }
    cells.forEach((cell, c) => {
      if (!isNumber(cell))
        throw new CsvError(
          `${what}: row ${r + 1 + (header ? 1 : 0)}, column "${columns[c]}": "${cell}" is not a number`,
        );
      data[c][r] = Number(cell);
    });
  });
  return { columns, rows: body.length, data };
}

export function readCsv(path: string): Table {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new CsvError(`cannot read ${path}: ${(e as Error).message}`);
  }
  return parseCsv(text, path);
}

/**
 * Column selection: a comma-separated list of names, 0-based indices, or index ranges `i..j`
 * (inclusive). Returns the column indices in the order given.
 */
export function selectColumns(table: Table, spec: string, what: string): number[] {
  const out: number[] = [];
  for (const part of spec
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "")) {
    const range = /^(\d+)\.\.(\d+)$/.exec(part);
    if (range) {
      const [a, b] = [Number(range[1]), Number(range[2])];
      if (a > b || b >= table.columns.length)
        throw new CsvError(`${what}: range ${part} is outside 0..${table.columns.length - 1}`);
      for (let i = a; i <= b; i++) out.push(i);
      continue;
    }
    const byName = table.columns.indexOf(part);
    if (byName >= 0) out.push(byName);
    else if (/^\d+$/.test(part) && Number(part) < table.columns.length) out.push(Number(part));
    else
      throw new CsvError(
        `${what}: no column "${part}" (columns: ${table.columns.slice(0, 8).join(", ")}${table.columns.length > 8 ? ", …" : ""})`,
      );
  }
  if (out.length === 0) throw new CsvError(`${what}: no columns selected`);
  return out;
}
