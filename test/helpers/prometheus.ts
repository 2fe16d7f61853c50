/** A small parser of the Prometheus text exposition format (0.0.4), enough to check `/metrics`. */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Exposition {
  samples: Sample[];
  /** `# TYPE` per family name. */
  types: Map<string, string>;
  help: Map<string, string>;
}

export function parsePrometheusText(text: string): Exposition {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  const help = new Map<string, string>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    if (line.startsWith('#')) {
      const m = /^#\s+(HELP|TYPE)\s+(\S+)\s*(.*)$/.exec(line);
      if (m?.[1] === 'TYPE') types.set(m[2]!, m[3]!);
      else if (m?.[1] === 'HELP') help.set(m[2]!, m[3]!);
      continue;
    }
    samples.push(parseSample(line));
  }
  return { samples, types, help };
}

function parseSample(line: string): Sample {
  const nameMatch = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line);
  if (!nameMatch) throw new Error(`bad sample line: ${line}`);
  const name = nameMatch[0];
  let i = name.length;
  const labels: Record<string, string> = {};
  if (line[i] === '{') {
    i++;
    while (line[i] !== '}') {
      const key = /^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"/.exec(line.slice(i));
      if (!key) throw new Error(`bad labels in: ${line}`);
      i += key[0].length;
      let value = '';
      while (line[i] !== '"') {
        if (i >= line.length) throw new Error(`unterminated label value in: ${line}`);
        if (line[i] === '\\') {
          const next = line[i + 1];
          value += next === 'n' ? '\n' : next;
          i += 2;
        } else value += line[i++];
      }
      i++; // closing quote
      labels[key[1]!] = value;
      if (line[i] === ',') i++;
      while (line[i] === ' ') i++;
    }
    i++;
  }
  const [valueText] = line.slice(i).trim().split(/\s+/);
  const value = valueText === '+Inf' ? Infinity : valueText === '-Inf' ? -Infinity : Number(valueText);
  if (valueText === undefined || (Number.isNaN(value) && valueText !== 'NaN')) throw new Error(`bad value in: ${line}`);
  return { name, labels, value };
}

/** Samples of `name` whose labels include every pair of `labels`. */
export function samplesOf(e: Exposition, name: string, labels: Record<string, string> = {}): Sample[] {
  return e.samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
}

/** The sum of the matching samples (0 when none). */
export function sumOf(e: Exposition, name: string, labels: Record<string, string> = {}): number {
  return samplesOf(e, name, labels).reduce((a, s) => a + s.value, 0);
}

export async function scrape(url: string): Promise<Exposition> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`GET ${url}: ${res.status}`);
  return parsePrometheusText(await res.text());
}
