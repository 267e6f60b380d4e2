/** A small Prometheus registry: counters and gauges with labels, rendered in the text format. */
type Labels = Record<string, string>;

interface Family {
  type: "counter" | "gauge";
  help: string;
  values: Map<string, { labels: Labels; value: number }>;
}

export class Metrics {
  readonly #families = new Map<string, Family>();

  counter(name: string, help: string): (labels?: Labels, by?: number) => void {
    const family = this.#family(name, "counter", help);
    return (labels = {}, by = 1) => this.#add(family, labels, by);
  }

  gauge(name: string, help: string): (value: number, labels?: Labels) => void {
    const family = this.#family(name, "gauge", help);
    return (value, labels = {}) => {
      family.values.set(key(labels), { labels, value });
    };
  }

  /** Current value (tests and status pages). */
  value(name: string, labels: Labels = {}): number {
    return this.#families.get(name)?.values.get(key(labels))?.value ?? 0;
  }

  render(): string {
    const lines: string[] = [];
    for (const [name, f] of this.#families) {
      lines.push(`# HELP ${name} ${f.help}`, `# TYPE ${name} ${f.type}`);
      for (const { labels, value } of f.values.values()) {
        const l = Object.entries(labels);
        const text =
          l.length === 0
            ? ""
            : `{${l.map(([k, v]) => `${k}="${v.replace(/["\\\n]/g, "_")}"`).join(",")}}`;
        lines.push(`${name}${text} ${value}`);
      }
    }
    return `${lines.join("\n")}\n`;
  }

  #family(name: string, type: Family["type"], help: string): Family {
    let f = this.#families.get(name);
    if (f === undefined) {
      f = { type, help, values: new Map() };
      this.#families.set(name, f);
    }
    return f;
  }

  #add(family: Family, labels: Labels, by: number): void {
    const k = key(labels);
    const entry = family.values.get(k);
    if (entry === undefined) family.values.set(k, { labels, value: by });
    else entry.value += by;
  }
}

function key(labels: Labels): string {
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join(",");
}
