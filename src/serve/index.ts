/** Serving a blob over HTTP, for the mirror and the peer listener: the file sender. */
export { type Pace, parseByteRange, sendFileRange } from "./send-file.ts";
