import { createInterface } from "node:readline/promises";
import { Writable } from "node:stream";
import { stderr } from "./stdio.ts";

/** Asks on the terminal; with echo off, typed characters are not shown. */
export async function readSecret(question: string, options: { echo: boolean }): Promise<string> {
  let muted = false;
  const output = new Writable({
    write(chunk, _encoding, done) {
      if (!muted) stderr.write(chunk);
      done();
    },
  });
  const rl = createInterface({ input: process.stdin, output, terminal: true });
  try {
    const answer = rl.question(question);
    muted = !options.echo;
    return (await answer).trim();
  } finally {
    rl.close();
    if (!options.echo) stderr.write("\n");
  }
}
