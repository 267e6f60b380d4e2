import { FerryError } from "../observe/index.ts";

/** A layer that claims to be eStargz but whose footer or TOC cannot be trusted. */
export function invalidLayer(layer: string, problem: string): FerryError {
  return new FerryError("FERRY_ARCHIVE_INVALID", `eStargz layer ${layer}: ${problem}`, {
    hint: "the layer's table of contents is malformed or hostile; nothing from it was used",
    fields: { layer },
  });
}
