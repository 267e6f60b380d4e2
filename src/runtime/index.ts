export type { ImagePresence, Target, TargetKind, TargetPullOptions } from "./target.ts";
