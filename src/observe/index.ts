export { type ErrorCode, FerryError, type FerryErrorOptions, isFerryError } from "./errors.ts";
