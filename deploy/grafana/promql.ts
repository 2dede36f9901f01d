/**
 * The vector selectors of a PromQL expression (`name{matchers}`), for tests that check every
 * metric a rule or a panel reads is one vigil exports. A small tokenizer, not a full parser: it
 * knows PromQL's functions, aggregations and modifiers by their shape (a name followed by `(`, a
 * keyword followed by a label list), which is all the expressions of this repository use.
 * Prometheus itself still parses every expression in test/prometheus-live.test.ts.
 */

/** One vector selector: the metric name and its label matchers as written (`{…}` or empty). */
export interface Selector {
  name: string;
  matchers: string;
}

const KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan', 'atan2']);
/** Keywords followed by a parenthesised label list. */
const LABEL_LISTS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right']);

/** The selectors of `expr`, in order of appearance. */
export function selectors(expr: string): Selector[] {
  const out: Selector[] = [];
  let i = 0;
  const n = expr.length;
  /** Index just past the group opened at `start` (`(`, `{` or `[`), skipping quoted strings. */
  const skipGroup = (start: number): number => {
    const open = expr[start];
    const close = open === '(' ? ')' : open === '{' ? '}' : ']';
    let depth = 0;
    for (let j = start; j < n; j++) {
      const c = expr[j];
      if (c === '"' || c === "'" || c === '`') j = skipString(j);
      else if (c === open) depth++;
      else if (c === close && --depth === 0) return j + 1;
    }
    throw new Error(`unbalanced ${open} in ${expr}`);
  };
  const skipString = (start: number): number => {
    const quote = expr[start];
    for (let j = start + 1; j < n; j++) {
      if (expr[j] === '\\') j++;
      else if (expr[j] === quote) return j;
    }
    throw new Error(`unterminated string in ${expr}`);
  };
  const nextNonSpace = (from: number): number => {
    let j = from;
    while (j < n && /\s/.test(expr[j]!)) j++;
    return j;
  };
  while (i < n) {
    const c = expr[i]!;
    if (c === '"' || c === "'" || c === '`') {
      i = skipString(i) + 1;
    } else if (c === '[') {
      i = skipGroup(i);
    } else if (c === '{') {
      i = skipGroup(i); // a selector without a metric name: not used here
    } else if (/[0-9.]/.test(c)) {
      const m = /^[0-9.]+(e[+-]?[0-9]+)?([smhdwy]|ms)?([0-9]+([smhdwy]|ms))*/i.exec(expr.slice(i));
      i += m ? m[0].length : 1;
    } else if (/[a-zA-Z_:]/.test(c)) {
      const ident = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(expr.slice(i))![0];
      const after = nextNonSpace(i + ident.length);
      if (LABEL_LISTS.has(ident)) {
        i = expr[after] === '(' ? skipGroup(after) : after;
      } else if (KEYWORDS.has(ident.toLowerCase())) {
        i = after;
      } else if (expr[after] === '(' || /^(by|without)\b/.test(expr.slice(after))) {
        i = after; // a function or aggregation (`max by (l) (…)`): its arguments are scanned next
      } else if (expr[after] === '{') {
        const end = skipGroup(after);
        out.push({ name: ident, matchers: expr.slice(after, end) });
        i = end;
      } else {
        out.push({ name: ident, matchers: '' });
        i = i + ident.length;
      }
    } else {
      i++;
    }
  }
  return out;
}

/** The metric family a sample name belongs to (histogram and summary series carry a suffix). */
export function family(name: string, families: ReadonlySet<string>): string | undefined {
  if (families.has(name)) return name;
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (name.endsWith(suffix) && families.has(name.slice(0, -suffix.length))) return name.slice(0, -suffix.length);
  }
  return undefined;
}
