export type { ImageEntry, ImageList, WarmFunction, WarmResult, WarmState } from "./types.ts";
