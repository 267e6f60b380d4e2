import { resolve } from "node:path";
import { RegistryClient } from "../registry/index.ts";
import { defaultStoreRoot, Store } from "../store/index.ts";

export interface GlobalOptions {
  store?: string;
}

/** The store a command works on: --store, else $FERRY_STORE, else the default location. */
export function storeRoot(options: GlobalOptions, env: NodeJS.ProcessEnv = process.env): string {
  return resolve(options.store ?? defaultStoreRoot(env));
}

export async function openStore(options: GlobalOptions): Promise<Store> {
  return Store.open(storeRoot(options));
}

export function createRegistryClient(): RegistryClient {
  return new RegistryClient();
}
