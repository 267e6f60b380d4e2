import { homedir } from "node:os";

/** The user's home directory: `home` if given, else $HOME from `env`, else the OS's idea of it. */
export function homeDirectory(env: NodeJS.ProcessEnv, home?: string): string {
  return home ?? (env.HOME !== undefined && env.HOME !== "" ? env.HOME : homedir());
}
