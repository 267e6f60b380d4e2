/**
 * Eight hex digits for names that must not collide (temp files, lock tokens, leases), beside
 * the pid that every such name also carries. Not a secret, so Math.random: node:crypto costs
 * ~8 ms to load, and a repeat pull (which writes a use record) must not load it (note 14).
 */
export function uniqueHex(): string {
  return Math.floor(Math.random() * 0x1_0000_0000)
    .toString(16)
    .padStart(8, "0");
}
