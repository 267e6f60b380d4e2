/** Recent activity: the last pulls, failures first, newest first within each. */
import { h } from "./dom.ts";
import { formatBytes, formatSeconds, formatTime } from "./format.ts";
import { ACTIVITY_SHOWN, orderActivity } from "./order.ts";
import type { ActivityEntry } from "./types.ts";

export function renderActivity(
  body: HTMLTableSectionElement,
  entries: readonly ActivityEntry[],
): void {
  const rows = orderActivity(entries)
    .slice(0, ACTIVITY_SHOWN)
    .map((a) =>
      h(
        "tr",
        { class: a.result === "failed" ? "failed" : "" },
        h("td", {}, h("time", { datetime: a.at }, formatTime(a.at))),
        h("th", { scope: "row" }, a.image),
        h("td", {}, a.target ?? a.node ?? "–"),
        h(
          "td",
          {
            class: `result state-${a.result}`,
            title: a.error ? `${a.error.code}: ${a.error.message}` : undefined,
          },
          a.result,
          a.error ? h("span", { class: "reason" }, ` ${a.error.code}: ${a.error.message}`) : null,
        ),
        h("td", { class: "num" }, formatSeconds(a.seconds)),
        h("td", { class: "num" }, a.bytes === undefined ? "–" : formatBytes(a.bytes)),
        h("td", {}, a.source ?? "–"),
      ),
    );
  if (rows.length === 0) {
    rows.push(h("tr", {}, h("td", { colspan: 7, class: "muted" }, "No pulls yet.")));
  }
  body.replaceChildren(...rows);
}
