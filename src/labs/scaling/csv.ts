// A small RFC 4180 CSV reader for scaling-law runs: quoted fields, doubled quotes, CRLF. Errors name
// the missing column or the bad value with its 1-based line number, so users can fit their own runs.

export class CsvError extends Error {
  override name = "CsvError";
  constructor(message: string, readonly line?: number) { super(message); }
}

export interface CsvTable { header: string[]; rows: string[][]; /** 1-based file line of each row. */ lines: number[] }

/** Parse CSV text into a header and rows. Quoted fields may contain commas, quotes ("") and newlines. */
export function parseCsv(text: string): CsvTable {
  const records: { fields: string[]; line: number }[] = [];
  let field = "", fields: string[] = [], inQuotes = false, line = 1, recLine = 1, wasQuoted = false;
  const endField = () => { fields.push(wasQuoted ? field : field.trim()); field = ""; wasQuoted = false; };
  const endRecord = () => {
    endField();
    if (!(fields.length === 1 && fields[0] === "")) records.push({ fields, line: recLine });
    fields = [];
  };
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (inQuotes) {
      if (ch === '"') { if (text[i + 1] === '"') { field += '"'; i++; } else inQuotes = false; }
      else { if (ch === "\n") line++; field += ch; }
    } else if (ch === '"') {
      if (field.trim() !== "") throw new CsvError(`line ${line}: a quote inside an unquoted field`, line);
      field = ""; inQuotes = true; wasQuoted = true;
    } else if (ch === ",") endField();
    else if (ch === "\n" || ch === "\r") {
      if (ch === "\r" && text[i + 1] === "\n") i++;
      endRecord(); line++; recLine = line;
    } else field += ch;
  }
  if (inQuotes) throw new CsvError(`line ${recLine}: unterminated quoted field`, recLine);
  if (field !== "" || fields.length > 0) endRecord();
  if (records.length === 0) throw new CsvError("empty CSV: no header line");
  const header = records[0]!.fields;
  const rows = records.slice(1);
  for (const r of rows) if (r.fields.length !== header.length)
    throw new CsvError(`line ${r.line}: expected ${header.length} fields (as the header), got ${r.fields.length}`, r.line);
  return { header, rows: rows.map((r) => r.fields), lines: rows.map((r) => r.line) };
}

/** The column's values as positive finite numbers; throws naming the column and line otherwise. */
export function numericColumn(t: CsvTable, name: string): number[] {
  const j = t.header.indexOf(name);
  if (j < 0) throw new CsvError(`no column "${name}" (columns: ${t.header.map((h) => JSON.stringify(h)).join(", ")})`);
  return t.rows.map((r, i) => {
    const s = r[j]!, v = Number(s);
    if (s === "" || !Number.isFinite(v) || !(v > 0)) throw new CsvError(`line ${t.lines[i]}: column "${name}" must be a positive number, got ${JSON.stringify(s)}`, t.lines[i]);
    return v;
  });
}

export interface RunColumns { n: string; loss: string; flops?: string; d?: string }

/** Training runs from a CSV: N, loss, and D given directly or as FLOP / (6N) (Kaplan et al. 2020, C ≈ 6ND). */
export function runsFromCsv(text: string, cols: RunColumns): { N: number[]; D: number[]; C: number[]; L: number[] } {
  const t = parseCsv(text);
  if (!cols.d && !cols.flops) throw new CsvError("need a tokens column or a FLOP column");
  const N = numericColumn(t, cols.n), L = numericColumn(t, cols.loss);
  const D = cols.d ? numericColumn(t, cols.d) : undefined, F = cols.flops && (!cols.d || t.header.includes(cols.flops)) ? numericColumn(t, cols.flops) : undefined;
  const Dv = D ?? F!.map((c, i) => c / (6 * N[i]!));
  const Cv = F ?? Dv.map((d, i) => 6 * N[i]! * d);
  return { N, D: Dv, C: Cv, L };
}
